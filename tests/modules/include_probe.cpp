// Compiled once per module target, with that target's include path (tests/modules/CMakeLists.txt), so
// that include_roots_test.py can compile other includes with exactly the flags the build uses.
int moescopeIncludeProbe() {
  return 0;
}

# cmake -DINPUT=corpus.txt -DOUTPUT=sample_corpus.cpp -P embed_corpus.cmake
# Compiles the sample corpus into the engine, so `data.path = ""` works wherever the binary runs.
file(READ "${INPUT}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){32})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}" "// Generated from samples/corpus.txt by engine/embed_corpus.cmake.
#include \"engine/data.h\"

namespace moescope::engine {
namespace {
const unsigned char kCorpus[] = {
${bytes}
};
}  // namespace

std::string_view sampleCorpus() { return {reinterpret_cast<const char*>(kCorpus), sizeof(kCorpus)}; }

}  // namespace moescope::engine
")

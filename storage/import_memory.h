// The allocator of the import's large columns (an event per entry, millions of them): a block of 2 MiB
// or more is mapped on its own with transparent huge pages asked for (madvise), so that filling it
// faults once per 2 MiB instead of once per 4 KiB page. On the development VM a page fault cost about
// 8 us and faults were a tenth of a 1 GB import's CPU time (bench_import, docs/bench-import.md); the
// kernel gives plain pages where huge ones are off or unavailable, so this only ever saves time.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <new>
#include <vector>

namespace moescope::storage {

template <typename T>
struct LargeAllocator {
  using value_type = T;
  static constexpr size_t kHuge = size_t{2} << 20;

  LargeAllocator() = default;
  template <typename U>
  LargeAllocator(const LargeAllocator<U>&) {}

  static size_t mappedBytes(size_t n) { return (n * sizeof(T) + kHuge - 1) / kHuge * kHuge; }

  T* allocate(size_t n) {
    if (n * sizeof(T) < kHuge) return static_cast<T*>(::operator new(n * sizeof(T)));
    void* p = ::mmap(nullptr, mappedBytes(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    ::madvise(p, mappedBytes(n), MADV_HUGEPAGE);  // advice only: ignored where huge pages are off
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) < kHuge) {
      ::operator delete(p);
    } else {
      ::munmap(p, mappedBytes(n));
    }
  }
  template <typename U>
  bool operator==(const LargeAllocator<U>&) const {
    return true;
  }
};

// A column of the import.
template <typename T>
using LargeVector = std::vector<T, LargeAllocator<T>>;

}  // namespace moescope::storage

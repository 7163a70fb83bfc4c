#include "engine/mpi_runtime.h"

#include <mpi.h>

#include <cmath>
#include <stdexcept>

#include "engine/engine_error.h"

namespace moescope::engine {
namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw std::runtime_error(std::string("MPI: ") + what + ": " +
                           std::string(text, static_cast<size_t>(length)));
}

// MPI_Reduce's operation for gatherWeights: keeps the element a process wrote (not NaN).
void takeWritten(void* in, void* inout, int* len, MPI_Datatype*) {
  const float* a = static_cast<const float*>(in);
  float* b = static_cast<float*>(inout);
  for (int i = 0; i < *len; ++i) {
    if (std::isnan(b[i])) b[i] = a[i];
  }
}

}  // namespace

struct MpiRuntime::Channel {
  MPI_Comm comm = MPI_COMM_NULL;
};

MpiRuntime::MpiRuntime() : channel_(std::make_unique<Channel>()) {}

std::unique_ptr<MpiRuntime> MpiRuntime::start() {
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
    throw InputError("MPI did not start (MPI_Init_thread failed): is this a launch by mpirun or srun?");
  }
  if (provided < MPI_THREAD_MULTIPLE) {
    MPI_Finalize();
    throw InputError("this MPI library lacks MPI_THREAD_MULTIPLE, which the rank threads need");
  }
  auto rt = std::unique_ptr<MpiRuntime>(new MpiRuntime);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rt->process_);
  MPI_Comm_size(MPI_COMM_WORLD, &rt->processes_);
  char name[MPI_MAX_PROCESSOR_NAME];
  int length = 0;
  MPI_Get_processor_name(name, &length);
  rt->host_.assign(name, static_cast<size_t>(length));
  check(MPI_Comm_dup(MPI_COMM_WORLD, &rt->channel_->comm), "making the processes' channel");
  int* upper = nullptr;
  int found = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &upper, &found);
  if (found && upper && *upper > 0) rt->tag_limit_ = *upper;
  return rt;
}

MpiRuntime::~MpiRuntime() {
  if (channel_->comm != MPI_COMM_NULL) MPI_Comm_free(&channel_->comm);
  MPI_Finalize();
}

int MpiRuntime::tag(uint64_t any) const {
  return static_cast<int>(any % static_cast<uint64_t>(tag_limit_));
}

void MpiRuntime::sendBytes(int to, uint64_t t, const std::vector<std::byte>& bytes) const {
  check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, to, tag(t), channel_->comm),
        "sending to another process");
}

void MpiRuntime::recvBytes(int from, uint64_t t, std::vector<std::byte>& bytes) const {
  MPI_Status status;
  check(
      MPI_Recv(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, from, tag(t), channel_->comm, &status),
      "receiving from another process");
  int got = 0;
  MPI_Get_count(&status, MPI_BYTE, &got);
  if (got != static_cast<int>(bytes.size()))
    throw std::runtime_error("MPI: process " + std::to_string(from) + " sent " + std::to_string(got) +
                             " bytes where " + std::to_string(bytes.size()) + " were expected");
}

void MpiRuntime::barrier() const {
  check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
}

std::string MpiRuntime::broadcast(const std::string& text) const {
  long long size = static_cast<long long>(text.size());
  check(MPI_Bcast(&size, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD), "broadcast");
  std::string out = process_ == 0 ? text : std::string(static_cast<size_t>(size), '\0');
  check(MPI_Bcast(out.data(), static_cast<int>(size), MPI_CHAR, 0, MPI_COMM_WORLD), "broadcast");
  return out;
}

std::vector<std::string> MpiRuntime::allGather(const std::string& text) const {
  int size = static_cast<int>(text.size());
  std::vector<int> sizes(static_cast<size_t>(processes_)), offsets(static_cast<size_t>(processes_));
  check(MPI_Allgather(&size, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD),
        "all-gather of the processes' texts");
  int total = 0;
  for (size_t p = 0; p < sizes.size(); ++p) {
    offsets[p] = total;
    total += sizes[p];
  }
  std::string all(static_cast<size_t>(total), '\0');
  check(MPI_Allgatherv(text.data(), size, MPI_CHAR, all.data(), sizes.data(), offsets.data(), MPI_CHAR,
                       MPI_COMM_WORLD),
        "all-gather of the processes' texts");
  std::vector<std::string> out;
  for (size_t p = 0; p < sizes.size(); ++p)
    out.push_back(all.substr(static_cast<size_t>(offsets[p]), static_cast<size_t>(sizes[p])));
  return out;
}

void MpiRuntime::gatherWeights(ModelWeights& weights) const {
  MPI_Op op;
  check(MPI_Op_create(&takeWritten, 1, &op), "creating the weights gather");
  for (NamedTensor& t : weights) {
    std::vector<float> out(process_ == 0 ? t.data.size() : 0);
    // MPI counts are int: large tensors go in slices.
    constexpr size_t kSlice = size_t{1} << 30;
    for (size_t at = 0; at < t.data.size(); at += kSlice) {
      const int n = static_cast<int>(std::min(kSlice, t.data.size() - at));
      check(MPI_Reduce(t.data.data() + at, process_ == 0 ? out.data() + at : nullptr, n, MPI_FLOAT, op, 0,
                       MPI_COMM_WORLD),
            "reducing the trained weights onto process 0");
    }
    if (process_ == 0) t.data = std::move(out);
  }
  MPI_Op_free(&op);
}

void MpiRuntime::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

}  // namespace moescope::engine

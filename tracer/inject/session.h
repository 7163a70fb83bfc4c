// One recording session per process: the settings `moescope-cli record` put in the environment
// (tracer/record_env.h), the store, and the shard written once at the end: at exit (atexit), on
// SIGTERM (from a thread of its own, then the signal goes on to what was there before), never in a
// forked child. Started by whichever entry point the process reaches first: NVTX's
// (InitializeInjectionNvtx2, at the first NVTX call) or CUDA's (InitializeInjection, in cuInit).
#pragma once

#include <string>

#include "tracer/inject/process_recorder.h"
#include "tracer/record_env.h"

namespace moescope::tracer::inject {

struct Session {
  RecordSettings settings;
  ProcessRecorder recorder;
};

// The session, or nullptr when the process is not being recorded (no MOESCOPE_RECORD_DIR, bad
// settings: said once on stderr, a forked child).
Session* session();

// Says one line on stderr, "moescope: <text>".
void say(const std::string& text);

// CUDA's side (cupti_injection.cpp): starts CUPTI for the session; the final drain at the end.
void startGpuRecording(Session& s);
// Stops CUPTI's drain, takes its last records into the store. Returns what the stream should say
// about the GPU: empty when CUPTI ran, else why not.
std::string finishGpuRecording(Session& s, bool& recorded, uint64_t& dropped);

}  // namespace moescope::tracer::inject

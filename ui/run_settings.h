// What the run dialog sets for `moescope-cli train`: the model size, layout, parallel sizes, steps,
// backend and output file, on top of a preset (a TOML file from samples/ whose other keys, such as
// the learning rate and the data, the run keeps). Presets are read here only to fill the dialog;
// the CLI reads and checks the config itself, so there is one source of truth for its rules.
#pragma once

#include <QString>
#include <QStringList>
#include <cstdint>

namespace moescope::ui {

struct RunSettings {
  QString preset;  // the base config file; empty: the CLI's defaults
  int64_t vocabSize = 256, seqLen = 64, dModel = 128, nHeads = 4, nLayers = 4, dFf = 512;
  QString layout = QStringLiteral("ppmoe");  // "dense" | "ppmoe" | "dpmoe"
  int64_t nExperts = 8, topK = 2;
  double capacityFactor = 0.0;
  int64_t pp = 1, tp = 1, dp = 1, microbatches = 1, globalBatch = 8;
  QString schedule = QStringLiteral("1f1b");  // "gpipe" | "1f1b"
  int64_t steps = 10;
  QString backend = QStringLiteral("cpu");  // "cpu" | "cuda"
  QString out;                              // the run file
  bool operator==(const RunSettings&) const = default;
};

// The settings of a preset file (the keys it does not give keep MODEL.md's defaults; n_experts = 0
// is the dense layout). Throws std::runtime_error naming the file when it cannot be read or parsed.
RunSettings loadPreset(const QString& path);

// Arguments of `moescope-cli` for the run: `train --config ... --set ...`; with dryRun, the check
// that runs every test of a real run and writes nothing. configPath replaces an empty preset.
QStringList trainArguments(const RunSettings& settings, const QString& configPath, bool dryRun);

// Where the sample configs are: $MOESCOPE_SAMPLES, or samples/ beside or above the executable's
// folder (installed: ../share/moescope/samples). Empty if none is found.
QString samplesFolder();
// The *.toml files of samplesFolder(), sorted by name.
QStringList presetFiles();

// moescope-cli beside the running executable.
QString cliPath();

}  // namespace moescope::ui

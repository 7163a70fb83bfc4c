// What the run dialog sets for `moescope-cli train`: a preset (a sample TOML file, given as --config),
// a value for keys of the config schema (config_schema.h; given as --set key=value), the backend and
// the output file. The CLI reads and checks the config itself, so its rules live in one place.
#pragma once

#include <QString>
#include <QStringList>
#include <QVariantMap>
#include <cstdint>

#include "ui/config_schema.h"

namespace moescope::ui {

struct RunSettings {
  QString preset;                           // the base config file; empty: the CLI's defaults
  QVariantMap values;                       // "model.d_model" -> 128 (qlonglong, double, QString or bool)
  QString backend = QStringLiteral("cpu");  // "cpu" | "cuda"
  QString out;                              // the run file
  bool operator==(const RunSettings&) const = default;

  // A value as text, or as an integer; fallback when the key is not set.
  QString text(const QString& key, const QString& fallback = {}) const;
  int64_t integer(const QString& key, int64_t fallback = 0) const;
};

// The settings of a preset: its file and every key of the schema (the preset's value, else the
// key's default).
RunSettings presetSettings(const ConfigSchema& schema, const ConfigPreset* preset);

// "model.d_model=128", "parallel.layout=\"ppmoe\"", "train.lr=0.001": a --set argument, the value
// written as TOML.
QString setArgument(const QString& key, const QVariant& value);

// Arguments of `moescope-cli` for the run: `train --config ... --set ...`; with dryRun, the check
// that runs every test of a real run and writes nothing. configPath replaces an empty preset.
QStringList trainArguments(const RunSettings& settings, const QString& configPath, bool dryRun);

// moescope-cli beside the running executable.
QString cliPath();

}  // namespace moescope::ui

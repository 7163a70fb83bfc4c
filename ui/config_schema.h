// The run configuration's schema as `moescope-cli config --json` prints it (version 1): every key with
// its type, default, limits, choices and one line of documentation, and the sample presets with the
// values each sets. The run dialog builds its fields from it, so the CLI (engine/config) stays the one
// place that knows the keys, their defaults and their rules; ui/ has no TOML parser.
#pragma once

#include <QByteArray>
#include <QList>
#include <QString>
#include <QStringList>
#include <QVariant>
#include <QVariantMap>
#include <optional>

namespace moescope::ui {

struct ConfigKey {
  QString key;   // "model.vocab_size"
  QString type;  // "int", "float", "string", "bool"
  QVariant defaultValue;
  std::optional<double> min, max;
  QStringList choices;
  QString doc;
  QString section() const { return key.section(QLatin1Char('.'), 0, 0); }
  QString name() const { return key.section(QLatin1Char('.'), 1); }
  bool operator==(const ConfigKey&) const = default;
};

struct ConfigPreset {
  QString name;  // "ppmoe"
  QString file;  // its TOML file, absolute
  QVariantMap values;
  bool operator==(const ConfigPreset&) const = default;
};

struct ConfigSchema {
  int version = 0;
  QList<ConfigKey> keys;
  QList<ConfigPreset> presets;
  const ConfigKey* find(const QString& key) const;
  const ConfigPreset* preset(const QString& name) const;
  bool operator==(const ConfigSchema&) const = default;
};

// Reads the JSON; nullopt with the reason in *error for anything but a version-1 schema whose keys
// all have a name, a known type and a default of that type.
std::optional<ConfigSchema> parseConfigSchema(const QByteArray& json, QString* error = nullptr);

// Runs `cli config --json` (at most timeoutMs) and reads its output; nullopt with the reason (the
// CLI's one line, or why it did not run) in *error.
std::optional<ConfigSchema> loadConfigSchema(const QString& cli, QString* error = nullptr,
                                             int timeoutMs = 15'000);

}  // namespace moescope::ui

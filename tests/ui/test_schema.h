// The config schema for the tests: a fixture of `moescope-cli config --json`'s version-1 shape
// (tests/ui/data/config_schema.json), its presets pointing at the source tree's samples.
#pragma once

#include <QFile>
#include <QString>
#include <stdexcept>

#include "ui/config_schema.h"

namespace moescope::ui::test {

inline QByteArray schemaJson() {
  QFile f(QStringLiteral(MOESCOPE_SOURCE_DIR "/tests/ui/data/config_schema.json"));
  if (!f.open(QIODevice::ReadOnly)) throw std::runtime_error("cannot read the config schema fixture");
  QByteArray json = f.readAll();
  json.replace("@SAMPLES@", QByteArray(MOESCOPE_SOURCE_DIR "/samples"));
  return json;
}

inline ConfigSchema schema() {
  QString error;
  auto s = parseConfigSchema(schemaJson(), &error);
  if (!s) throw std::runtime_error(("config schema fixture: " + error).toStdString());
  return *s;
}

}  // namespace moescope::ui::test

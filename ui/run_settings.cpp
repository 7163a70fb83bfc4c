#include "ui/run_settings.h"

#include <QCoreApplication>
#include <QDir>

namespace moescope::ui {

QString RunSettings::text(const QString& key, const QString& fallback) const {
  const auto it = values.constFind(key);
  return it == values.constEnd() ? fallback : it->toString();
}

int64_t RunSettings::integer(const QString& key, int64_t fallback) const {
  const auto it = values.constFind(key);
  bool ok = false;
  const qlonglong v = it == values.constEnd() ? 0 : it->toLongLong(&ok);
  return ok ? v : fallback;
}

RunSettings presetSettings(const ConfigSchema& schema, const ConfigPreset* preset) {
  RunSettings s;
  if (preset) s.preset = preset->file;
  for (const ConfigKey& k : schema.keys) {
    s.values.insert(k.key,
                    preset && preset->values.contains(k.key) ? preset->values.value(k.key) : k.defaultValue);
  }
  return s;
}

QString setArgument(const QString& key, const QVariant& value) {
  QString v;
  switch (value.typeId()) {
    case QMetaType::Bool:
      v = value.toBool() ? QStringLiteral("true") : QStringLiteral("false");
      break;
    case QMetaType::Double:
    case QMetaType::Float:
      v = QString::number(value.toDouble(), 'g', 17);
      break;
    case QMetaType::LongLong:
    case QMetaType::Int:
    case QMetaType::UInt:
    case QMetaType::ULongLong:
      v = QString::number(value.toLongLong());
      break;
    default: {
      // A TOML basic string: backslashes and quotes escaped.
      QString s = value.toString();
      s.replace(QLatin1Char('\\'), QStringLiteral("\\\\")).replace(QLatin1Char('"'), QStringLiteral("\\\""));
      v = QLatin1Char('"') + s + QLatin1Char('"');
    }
  }
  return key + QLatin1Char('=') + v;
}

QStringList trainArguments(const RunSettings& s, const QString& configPath, bool dryRun) {
  QStringList args = {QStringLiteral("train"), QStringLiteral("--config"),
                      s.preset.isEmpty() ? configPath : s.preset};
  for (auto it = s.values.constBegin(); it != s.values.constEnd(); ++it)
    args << QStringLiteral("--set") << setArgument(it.key(), it.value());
  args << QStringLiteral("--backend") << s.backend;
  if (!s.out.isEmpty()) args << QStringLiteral("--out") << s.out;
  if (dryRun) args << QStringLiteral("--dry-run");
  return args;
}

QString cliPath() {
  QString path = QDir(QCoreApplication::applicationDirPath()).filePath(QStringLiteral("moescope-cli"));
#ifdef Q_OS_WIN
  path += QStringLiteral(".exe");
#endif
  return path;
}

}  // namespace moescope::ui

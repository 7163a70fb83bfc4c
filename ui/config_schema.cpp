#include "ui/config_schema.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>

namespace moescope::ui {
namespace {

bool fail(QString* error, const QString& why) {
  if (error) *error = why;
  return false;
}

// The JSON value as the key's type: qlonglong, double, QString or bool; invalid when it is not one.
QVariant typed(const QJsonValue& v, const QString& type) {
  if (type == QLatin1String("int")) {
    if (!v.isDouble()) return {};
    const double d = v.toDouble();
    if (d != static_cast<double>(static_cast<qlonglong>(d))) return {};
    return static_cast<qlonglong>(v.toInteger());
  }
  if (type == QLatin1String("float")) return v.isDouble() ? QVariant(v.toDouble()) : QVariant();
  if (type == QLatin1String("string")) return v.isString() ? QVariant(v.toString()) : QVariant();
  if (type == QLatin1String("bool")) return v.isBool() ? QVariant(v.toBool()) : QVariant();
  return {};
}

}  // namespace

const ConfigKey* ConfigSchema::find(const QString& key) const {
  for (const ConfigKey& k : keys) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

const ConfigPreset* ConfigSchema::preset(const QString& name) const {
  for (const ConfigPreset& p : presets) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::optional<ConfigSchema> parseConfigSchema(const QByteArray& json, QString* error) {
  QJsonParseError parse{};
  const QJsonDocument doc = QJsonDocument::fromJson(json, &parse);
  if (parse.error != QJsonParseError::NoError || !doc.isObject()) {
    fail(error, QObject::tr("not JSON (%1)").arg(parse.errorString()));
    return std::nullopt;
  }
  const QJsonObject root = doc.object();
  ConfigSchema s;
  s.version = root.value(QStringLiteral("version")).toInt();
  if (s.version != 1) {
    fail(error, QObject::tr("schema version %1, this moescope reads version 1").arg(s.version));
    return std::nullopt;
  }
  for (const QJsonValue& v : root.value(QStringLiteral("keys")).toArray()) {
    const QJsonObject o = v.toObject();
    ConfigKey k;
    k.key = o.value(QStringLiteral("key")).toString();
    k.type = o.value(QStringLiteral("type")).toString();
    k.defaultValue = typed(o.value(QStringLiteral("default")), k.type);
    if (!k.key.contains(QLatin1Char('.')) || !k.defaultValue.isValid()) {
      fail(error, QObject::tr("key \"%1\" of type \"%2\" has no usable default").arg(k.key, k.type));
      return std::nullopt;
    }
    if (o.contains(QStringLiteral("min"))) k.min = o.value(QStringLiteral("min")).toDouble();
    if (o.contains(QStringLiteral("max"))) k.max = o.value(QStringLiteral("max")).toDouble();
    for (const QJsonValue& c : o.value(QStringLiteral("choices")).toArray()) k.choices << c.toString();
    k.doc = o.value(QStringLiteral("doc")).toString();
    s.keys.push_back(std::move(k));
  }
  if (s.keys.isEmpty()) {
    fail(error, QObject::tr("the schema lists no keys"));
    return std::nullopt;
  }
  for (const QJsonValue& v : root.value(QStringLiteral("presets")).toArray()) {
    const QJsonObject o = v.toObject();
    ConfigPreset p;
    p.name = o.value(QStringLiteral("name")).toString();
    p.file = o.value(QStringLiteral("file")).toString();
    const QJsonObject values = o.value(QStringLiteral("values")).toObject();
    for (auto it = values.begin(); it != values.end(); ++it) {
      const ConfigKey* k = s.find(it.key());
      if (!k) continue;  // a key this schema does not list: the CLI keeps it from the file
      const QVariant value = typed(it.value(), k->type);
      if (value.isValid()) p.values.insert(it.key(), value);
    }
    if (!p.name.isEmpty() && !p.file.isEmpty()) s.presets.push_back(std::move(p));
  }
  return s;
}

std::optional<ConfigSchema> loadConfigSchema(const QString& cli, QString* error, int timeoutMs) {
  QProcess p;
  p.start(cli, {QStringLiteral("config"), QStringLiteral("--json")});
  if (!p.waitForStarted(timeoutMs)) {
    fail(error, QObject::tr("cannot run %1: %2").arg(cli, p.errorString()));
    return std::nullopt;
  }
  if (!p.waitForFinished(timeoutMs)) {
    p.kill();
    p.waitForFinished(1000);
    fail(error, QObject::tr("%1 config --json took longer than %2 s").arg(cli).arg(timeoutMs / 1000));
    return std::nullopt;
  }
  const QByteArray out = p.readAllStandardOutput();
  if (p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0) {
    const QStringList lines =
        QString::fromUtf8(p.readAllStandardError()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    fail(error, lines.isEmpty()
                    ? QObject::tr("%1 config --json exited with status %2").arg(cli).arg(p.exitCode())
                    : lines.last().trimmed());
    return std::nullopt;
  }
  QString why;
  auto schema = parseConfigSchema(out, &why);
  if (!schema) fail(error, QObject::tr("%1 config --json: %2").arg(cli, why));
  return schema;
}

}  // namespace moescope::ui

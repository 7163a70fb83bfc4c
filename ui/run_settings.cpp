#include "ui/run_settings.h"

#include <toml++/toml.h>

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <stdexcept>

namespace moescope::ui {
namespace {

void readInt(const toml::table& t, const char* section, const char* key, int64_t& field) {
  if (auto v = t[section][key].value<int64_t>()) field = *v;
}

void readDouble(const toml::table& t, const char* section, const char* key, double& field) {
  if (auto v = t[section][key].value<double>()) field = *v;
}

void readString(const toml::table& t, const char* section, const char* key, QString& field) {
  if (auto v = t[section][key].value<std::string>()) field = QString::fromStdString(*v);
}

QString set(const char* key, int64_t value) {
  return QStringLiteral("%1=%2").arg(QLatin1String(key)).arg(value);
}

}  // namespace

RunSettings loadPreset(const QString& path) {
  toml::table t;
  try {
    t = toml::parse_file(path.toStdString());
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(path.toStdString() + ": " + std::string(e.description()));
  }
  RunSettings s;
  s.preset = path;
  readInt(t, "model", "vocab_size", s.vocabSize);
  readInt(t, "model", "seq_len", s.seqLen);
  readInt(t, "model", "d_model", s.dModel);
  readInt(t, "model", "n_heads", s.nHeads);
  readInt(t, "model", "n_layers", s.nLayers);
  readInt(t, "model", "d_ff", s.dFf);
  readInt(t, "model", "n_experts", s.nExperts);
  readInt(t, "model", "top_k", s.topK);
  readDouble(t, "model", "capacity_factor", s.capacityFactor);
  readString(t, "parallel", "layout", s.layout);
  readInt(t, "parallel", "pp", s.pp);
  readInt(t, "parallel", "tp", s.tp);
  readInt(t, "parallel", "dp", s.dp);
  readInt(t, "parallel", "microbatches", s.microbatches);
  readString(t, "parallel", "schedule", s.schedule);
  readInt(t, "train", "global_batch", s.globalBatch);
  readInt(t, "train", "steps", s.steps);
  if (s.nExperts == 0) {
    s.layout = QStringLiteral("dense");
    s.nExperts = 8;  // shown (greyed) if the user switches to an MoE layout
  }
  return s;
}

QStringList trainArguments(const RunSettings& s, const QString& configPath, bool dryRun) {
  const bool dense = s.layout == QLatin1String("dense");
  QStringList args = {QStringLiteral("train"), QStringLiteral("--config"),
                      s.preset.isEmpty() ? configPath : s.preset};
  const QStringList sets = {
      set("model.vocab_size", s.vocabSize),
      set("model.seq_len", s.seqLen),
      set("model.d_model", s.dModel),
      set("model.n_heads", s.nHeads),
      set("model.n_layers", s.nLayers),
      set("model.d_ff", s.dFf),
      set("model.n_experts", dense ? 0 : s.nExperts),
      set("model.top_k", s.topK),
      QStringLiteral("model.capacity_factor=%1").arg(s.capacityFactor, 0, 'g', 17),
      QStringLiteral("parallel.layout=\"%1\"").arg(dense ? QStringLiteral("ppmoe") : s.layout),
      set("parallel.pp", s.pp),
      set("parallel.tp", s.tp),
      set("parallel.dp", s.dp),
      set("parallel.microbatches", s.microbatches),
      QStringLiteral("parallel.schedule=\"%1\"").arg(s.schedule),
      set("train.global_batch", s.globalBatch),
      set("train.steps", s.steps),
  };
  for (const QString& kv : sets) args << QStringLiteral("--set") << kv;
  args << QStringLiteral("--backend") << s.backend;
  if (!s.out.isEmpty()) args << QStringLiteral("--out") << s.out;
  if (dryRun) args << QStringLiteral("--dry-run");
  return args;
}

QString samplesFolder() {
  const QString env = qEnvironmentVariable("MOESCOPE_SAMPLES");
  if (!env.isEmpty()) return QFileInfo(env).isDir() ? QDir(env).absolutePath() : QString();
  const QDir app(QCoreApplication::applicationDirPath());
  for (const char* rel : {"../share/moescope/samples", "samples", "../samples", "../../samples"}) {
    const QString candidate = app.filePath(QLatin1String(rel));
    if (QFileInfo(candidate).isDir()) return QDir(candidate).absolutePath();
  }
  return {};
}

QStringList presetFiles() {
  const QString folder = samplesFolder();
  if (folder.isEmpty()) return {};
  const QDir dir(folder);
  QStringList files;
  for (const QString& name : dir.entryList({QStringLiteral("*.toml")}, QDir::Files, QDir::Name))
    files << dir.filePath(name);
  return files;
}

QString cliPath() {
  QString path = QDir(QCoreApplication::applicationDirPath()).filePath(QStringLiteral("moescope-cli"));
#ifdef Q_OS_WIN
  path += QStringLiteral(".exe");
#endif
  return path;
}

}  // namespace moescope::ui

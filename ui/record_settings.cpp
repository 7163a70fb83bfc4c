#include "ui/record_settings.h"

#include <QDir>
#include <QFileInfo>
#include <QRegularExpression>
#include <QSettings>
#include <QStandardPaths>
#include <QTemporaryFile>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "storage/import_layout.h"
#include "storage/record_shard.h"
#include "storage/rules.h"

namespace moescope::ui {
namespace {

QDir workingDir(const RecordSettings& s) {
  return s.workingDir.isEmpty() ? QDir::current() : QDir(s.workingDir);
}

QStringList environmentLines(const RecordSettings& s) {
  QStringList lines;
  for (const QString& line : s.environment.split(QLatin1Char('\n'))) {
    if (!line.trimmed().isEmpty()) lines << line.trimmed();
  }
  return lines;
}

// "" when the line sets a variable.
QString environmentLineProblem(const QString& line) {
  static const QRegularExpression name(QStringLiteral("^[A-Za-z_][A-Za-z0-9_]*$"));
  const qsizetype eq = line.indexOf(QLatin1Char('='));
  if (eq < 0 || !name.match(line.left(eq)).hasMatch())
    return QObject::tr("environment line '%1': expected NAME=value").arg(line);
  return {};
}

bool programFound(const QString& program, const RecordSettings& s) {
  if (program.contains(QLatin1Char('/'))) {
    const QFileInfo file(workingDir(s).absoluteFilePath(program));
    return file.isFile() && file.isExecutable();
  }
  const QStringList path = recordEnvironment(s).value(QStringLiteral("PATH")).split(QLatin1Char(':'));
  return !QStandardPaths::findExecutable(program, path).isEmpty();
}

// Whether a file can be made in the folder: tried, since permissions alone do not tell (root, a
// read-only mount, /proc).
bool canWriteIn(const QString& folder) {
  QTemporaryFile probe(QDir(folder).filePath(QStringLiteral(".moescope-record-XXXXXX")));
  return probe.open();
}

// Every field with its QSettings key: one list for loading and saving.
template <class F>
void forEachField(RecordSettings& s, F&& f) {
  f("command", s.command);
  f("workingDir", s.workingDir);
  f("environment", s.environment);
  f("output", s.output);
  f("replace", s.replace);
  f("pp", s.pp);
  f("tp", s.tp);
  f("dp", s.dp);
  f("order", s.order);
  f("schedule", s.schedule);
  f("rules", s.rules);
  f("steps", s.steps);
  f("nvtx", s.nvtx);
  f("kernels", s.kernels);
  f("launchCalls", s.launchCalls);
}

}  // namespace

// Written here: QProcess::splitCommand knows double quotes only (a user types 'single' ones too), and
// wordexp(3) would also expand globs and variables in the GUI's folder and environment rather than
// the command's.
std::optional<QStringList> splitCommandLine(const QString& line, QString* error) {
  QStringList words;
  QString word;
  bool inWord = false;
  QChar quote;  // '\'' or '"' while inside quotes
  for (qsizetype i = 0; i < line.size(); ++i) {
    const QChar c = line[i];
    if (quote == QLatin1Char('\'')) {
      if (c == quote)
        quote = QChar();
      else
        word += c;
    } else if (quote == QLatin1Char('"')) {
      if (c == quote) {
        quote = QChar();
      } else if (c == QLatin1Char('\\') && i + 1 < line.size() &&
                 QStringLiteral("\"\\$`").contains(line[i + 1])) {
        word += line[++i];
      } else {
        word += c;
      }
    } else if (c.isSpace()) {
      if (inWord) words << word;
      word.clear();
      inWord = false;
    } else {
      inWord = true;
      if (c == QLatin1Char('\'') || c == QLatin1Char('"')) {
        quote = c;
      } else if (c == QLatin1Char('\\')) {
        if (i + 1 == line.size()) {
          if (error) *error = QObject::tr("the command line ends with a backslash");
          return std::nullopt;
        }
        word += line[++i];
      } else {
        word += c;
      }
    }
  }
  if (!quote.isNull()) {
    if (error) *error = QObject::tr("the command line has an unclosed %1 quote").arg(quote);
    return std::nullopt;
  }
  if (inWord) words << word;
  return words;
}

QStringList commandWords(const RecordSettings& s) {
  return splitCommandLine(s.command).value_or(QStringList());
}

QString outputPath(const RecordSettings& s) {
  return s.output.isEmpty() ? QString() : QDir::cleanPath(workingDir(s).absoluteFilePath(s.output));
}

QProcessEnvironment recordEnvironment(const RecordSettings& s) {
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  for (const QString& line : environmentLines(s)) {
    const qsizetype eq = line.indexOf(QLatin1Char('='));
    if (eq > 0) env.insert(line.left(eq), line.mid(eq + 1));
  }
  return env;
}

QStringList recordArguments(const RecordSettings& s) {
  QStringList args{QStringLiteral("record")};
  args << QStringLiteral("--pp") << QString::number(s.pp) << QStringLiteral("--tp") << QString::number(s.tp)
       << QStringLiteral("--dp") << QString::number(s.dp);
  if (!s.order.isEmpty()) args << QStringLiteral("--order") << s.order;
  args << QStringLiteral("--schedule") << s.schedule;
  if (!s.rules.isEmpty()) args << QStringLiteral("--rules") << workingDir(s).absoluteFilePath(s.rules);
  if (!s.steps.isEmpty()) args << QStringLiteral("--steps") << s.steps;
  if (!s.nvtx) args << QStringLiteral("--no-nvtx");
  if (!s.kernels) args << QStringLiteral("--no-kernels");
  args << QStringLiteral("--launch-calls") << s.launchCalls;
  if (s.replace) args << QStringLiteral("--force");
  args << QStringLiteral("-o") << outputPath(s) << QStringLiteral("--") << commandWords(s);
  return args;
}

QString recordSettingsProblem(const RecordSettings& s) {
  if (!s.workingDir.isEmpty() && !QFileInfo(s.workingDir).isDir())
    return QObject::tr("working folder %1: not a folder").arg(s.workingDir);
  for (const QString& line : environmentLines(s)) {
    if (QString problem = environmentLineProblem(line); !problem.isEmpty()) return problem;
  }
  QString splitProblem;
  const std::optional<QStringList> split = splitCommandLine(s.command, &splitProblem);
  if (!split) return splitProblem;
  const QStringList& words = *split;
  if (words.isEmpty()) return QObject::tr("Enter the command to record (a program and its arguments).");
  if (!programFound(words.front(), s)) return QObject::tr("%1: command not found").arg(words.front());

  if (s.output.isEmpty()) return QObject::tr("Choose the run file to write.");
  const QFileInfo output(outputPath(s));
  const QFileInfo folder(output.absolutePath());
  if (!folder.isDir()) return QObject::tr("%1: the run file's folder does not exist").arg(folder.filePath());
  if (!canWriteIn(folder.filePath()))
    return QObject::tr("%1: the run file's folder cannot be written").arg(folder.filePath());
  if (output.isDir()) return QObject::tr("%1 is a folder; choose a run file").arg(output.filePath());
  if (output.exists() && !s.replace)
    return QObject::tr("%1 exists; tick \"Replace it\" or choose another run file").arg(output.filePath());

  std::string problem;
  if (!s.steps.isEmpty() && !storage::parseStepRange(s.steps.toStdString(), problem))
    return QString::fromStdString(problem);
  if (!s.order.isEmpty() && !storage::parseRankOrder(s.order.toStdString(), problem))
    return QString::fromStdString(problem);
  if (!s.rules.isEmpty()) {
    try {
      storage::rulesFor({std::filesystem::path(workingDir(s).absoluteFilePath(s.rules).toStdString())});
    } catch (const storage::RulesError& e) {
      return QString::fromStdString(e.what());
    }
  }
  return {};
}

RecordSettings loadRecordSettings(const QString& defaultOutput) {
  QSettings q;
  q.beginGroup(QStringLiteral("record"));
  RecordSettings s;
  s.output = defaultOutput;
  forEachField(s, [&q](const char* key, auto& value) {
    using T = std::decay_t<decltype(value)>;
    value = q.value(QLatin1String(key), QVariant::fromValue(value)).template value<T>();
  });
  return s;
}

void saveRecordSettings(const RecordSettings& settings) {
  QSettings q;
  q.beginGroup(QStringLiteral("record"));
  RecordSettings s = settings;
  forEachField(s, [&q](const char* key, auto& value) { q.setValue(QLatin1String(key), value); });
}

}  // namespace moescope::ui

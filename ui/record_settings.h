// What File > Record sets for `moescope-cli record [options] -- CMD ARGS...`: the command line to
// profile, where it runs and with which extra environment, the run file, and record's options. The
// checks that can be made before anything starts are made here, with the same functions record uses
// (storage's step range, rank order and rules), so that a bad value is said in the dialog and no
// process starts.
#pragma once

#include <QProcessEnvironment>
#include <QString>
#include <QStringList>
#include <optional>

namespace moescope::ui {

struct RecordSettings {
  QString command;       // the program and its arguments, quoted as in a shell (splitCommandLine)
  QString workingDir;    // where the command runs; empty: the GUI's own folder
  QString environment;   // "NAME=value" lines added to the command's environment; blank lines skipped
  QString output;        // the run file; a relative path is taken from workingDir
  bool replace = false;  // --force
  int pp = 1, tp = 1, dp = 1;
  QString order;  // --order; empty: record's own (tp-dp-pp)
  QString schedule = QStringLiteral("1f1b");
  QString rules;  // --rules FILE; empty: the shipped sets only
  QString steps;  // --steps A:B; empty: every step
  bool nvtx = true, kernels = true;
  QString launchCalls = QStringLiteral("activity");
  bool operator==(const RecordSettings&) const = default;
};

// A command line split into words as a POSIX shell splits it, without expanding anything: blanks
// separate words; '...' keeps everything literally; "..." keeps everything but \" \\ \$ \` (the
// character after the backslash); a backslash outside quotes keeps the next character. nullopt (and
// the problem in error) for an unclosed quote or a trailing backslash.
std::optional<QStringList> splitCommandLine(const QString& line, QString* error = nullptr);
// The settings' command line as program and arguments; empty when it does not split.
QStringList commandWords(const RecordSettings& settings);
// The run file's absolute path (a relative one taken from the working folder).
QString outputPath(const RecordSettings& settings);
// The command's environment: the GUI's, with the settings' lines set over it. Call once
// recordSettingsProblem() has accepted the lines.
QProcessEnvironment recordEnvironment(const RecordSettings& settings);
// `moescope-cli` arguments: record [options] -o OUTPUT -- PROGRAM ARGS...
QStringList recordArguments(const RecordSettings& settings);
// Why record cannot start with these settings (one line), or "" when it may: an empty command, a
// program not found, a working folder that is not one, an environment line that is not NAME=value, no
// run file, a run file whose folder is missing or cannot be written, a command line with an unclosed
// quote, an existing run file without
// replace, steps that are not A:B, a rank order record refuses, a rules file that does not read.
QString recordSettingsProblem(const RecordSettings& settings);

// The settings of the last recording (QSettings, group "record"); defaultOutput names the run file
// when none is kept.
RecordSettings loadRecordSettings(const QString& defaultOutput);
void saveRecordSettings(const RecordSettings& settings);

}  // namespace moescope::ui

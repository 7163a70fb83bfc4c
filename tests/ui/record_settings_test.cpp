// File > Record's settings: the `moescope-cli record` arguments of the defaults; the command line split
// as a shell splits it; the
// refusals made before anything starts (each with its one-line reason); the environment lines set over
// the GUI's; the settings kept between uses (QSettings).
#include "ui/record_settings.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QSettings>
#include <QTemporaryDir>
#include <QTest>

using namespace moescope::ui;

class RecordSettingsTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;

  QString write(const QString& name, const QByteArray& text) const {
    QFile f(dir_.filePath(name));
    if (!f.open(QIODevice::WriteOnly)) qFatal("cannot write %s", qPrintable(name));
    f.write(text);
    return f.fileName();
  }

  // Settings that pass: `sh -c true` into a run file in the temporary folder.
  RecordSettings valid() const {
    RecordSettings s;
    s.command = QStringLiteral("sh -c true");
    s.workingDir = dir_.path();
    s.output = QStringLiteral("run.moescope");
    return s;
  }

 private slots:
  void initTestCase() {
    QCoreApplication::setOrganizationName(QStringLiteral("moescope-tests"));
    QCoreApplication::setApplicationName(QStringLiteral("record_settings_test"));
    QSettings().clear();
  }

  // Every option is checked from the dialog's fields (record_dialog_test); left alone, they give this.
  void theDefaultsGiveTheShortestCommand() {
    const RecordSettings s = valid();
    QCOMPARE(recordArguments(s), QStringLiteral("record --pp 1 --tp 1 --dp 1 --schedule 1f1b --launch-calls "
                                                "activity -o %1 -- sh -c true")
                                     .arg(dir_.filePath("run.moescope"))
                                     .split(QLatin1Char(' ')));
    QCOMPARE(recordSettingsProblem(s), QString());
  }

  void theCommandLineSplitsAsAShellSplitsIt_data() {
    QTest::addColumn<QString>("line");
    QTest::addColumn<QStringList>("words");
    auto row = [](const char* name, const QString& line, const QStringList& words) {
      QTest::newRow(name) << line << words;
    };
    row("blanks", "  torchrun   --nproc-per-node 2\ttrain.py ",
        {"torchrun", "--nproc-per-node", "2", "train.py"});
    row("single quotes", "sh -c 'echo \"$HOME\" \\n'", {"sh", "-c", "echo \"$HOME\" \\n"});
    row("double quotes", "python \"my train.py\" \"a\\\"b\" \"\\$x\\y\"",
        {"python", "my train.py", "a\"b", "$x\\y"});
    row("backslash", "a\\ b c\\'d", {"a b", "c'd"});
    row("joined", "--name='a b'\"c\"d", {"--name=a bcd"});
    row("empty words", "prog '' \"\"", {"prog", "", ""});
    row("nothing", "   ", {});
  }

  void theCommandLineSplitsAsAShellSplitsIt() {
    QFETCH(QString, line);
    QFETCH(QStringList, words);
    QCOMPARE(splitCommandLine(line), std::optional<QStringList>(words));
  }

  void anUnclosedQuoteIsRefused() {
    QString error;
    QVERIFY(!splitCommandLine(QStringLiteral("sh -c 'echo"), &error));
    QCOMPARE(error, QStringLiteral("the command line has an unclosed ' quote"));
    QVERIFY(!splitCommandLine(QStringLiteral("a \"b"), &error));
    QCOMPARE(error, QStringLiteral("the command line has an unclosed \" quote"));
    QVERIFY(!splitCommandLine(QStringLiteral("a b\\"), &error));
    QCOMPARE(error, QStringLiteral("the command line ends with a backslash"));
    RecordSettings s = valid();
    s.command = QStringLiteral("sh -c 'true");
    QCOMPARE(recordSettingsProblem(s), QStringLiteral("the command line has an unclosed ' quote"));
  }

  void environmentLinesAreSetOverTheGuis() {
    RecordSettings s = valid();
    s.environment = QStringLiteral("MOESCOPE_TEST_A=1\n\n  MOESCOPE_TEST_B=x=y  \nPATH=/opt/bin");
    QCOMPARE(recordSettingsProblem(s), QStringLiteral("sh: command not found"));  // not on that PATH
    s.environment = QStringLiteral("MOESCOPE_TEST_A=1\n\n  MOESCOPE_TEST_B=x=y  ");
    QCOMPARE(recordSettingsProblem(s), QString());
    const QProcessEnvironment env = recordEnvironment(s);
    QCOMPARE(env.value(QStringLiteral("MOESCOPE_TEST_A")), QStringLiteral("1"));
    QCOMPARE(env.value(QStringLiteral("MOESCOPE_TEST_B")), QStringLiteral("x=y"));
    QCOMPARE(env.value(QStringLiteral("HOME")), qEnvironmentVariable("HOME"));
  }

  void badInputIsRefusedWithItsReason_data() {
    QTest::addColumn<QString>("field");
    QTest::addColumn<QString>("value");
    QTest::addColumn<QString>("problem");
    auto row = [](const char* name, const QString& field, const QString& value, const QString& problem) {
      QTest::newRow(name) << field << value << problem;
    };
    const QString d = dir_.path();
    row("empty command", "command", "  ", "Enter the command to record (a program and its arguments).");
    row("command not found", "command", "no-such-program-here --x",
        "no-such-program-here: command not found");
    row("no executable at a path", "command", "./missing.sh", "./missing.sh: command not found");
    row("working folder", "workingDir", d + "/nope", "working folder " + d + "/nope: not a folder");
    row("environment line", "environment", "A=1\nnot a setting",
        "environment line 'not a setting': expected NAME=value");
    row("no run file", "output", "", "Choose the run file to write.");
    row("missing folder", "output", d + "/no/such/run.moescope",
        d + "/no/such: the run file's folder does not exist");
    row("unwritable folder", "output", "/proc/run.moescope",
        "/proc: the run file's folder cannot be written");
    row("a folder", "output", d, d + " is a folder; choose a run file");
    row("steps without a colon", "steps", "5", "steps '5': expected A:B, two step numbers (0 or more)");
    row("steps backwards", "steps", "5:2", "steps '5:2': the first step is after the last");
    // Storage's own messages, as record says them.
    row("rank order", "order", "tp-pp", "the rank order 'tp-pp' must name tp, dp and pp");
    row("rules file missing", "rules", "missing.toml", d + "/missing.toml: cannot read the rules file");
    row("rules with a bad regex", "rules", "bad-regex.toml",
        d + "/bad-regex.toml:1: bad regular expression '(unclosed': missing closing parenthesis at offset 9");
  }

  void badInputIsRefusedWithItsReason() {
    QFETCH(QString, field);
    QFETCH(QString, value);
    QFETCH(QString, problem);
    write(QStringLiteral("bad-regex.toml"), "[[rule]]\nmatch = '(unclosed'\n");
    RecordSettings s = valid();
    if (field == "command") s.command = value;
    if (field == "workingDir") s.workingDir = value;
    if (field == "environment") s.environment = value;
    if (field == "output") s.output = value;
    if (field == "steps") s.steps = value;
    if (field == "order") s.order = value;
    if (field == "rules") s.rules = value;
    const QString got = recordSettingsProblem(s);
    QCOMPARE(got, problem);
  }

  void anExistingRunFileNeedsReplace() {
    RecordSettings s = valid();
    write(QStringLiteral("run.moescope"), "mine");
    QCOMPARE(recordSettingsProblem(s),
             dir_.filePath("run.moescope") + " exists; tick \"Replace it\" or choose another run file");
    s.replace = true;
    QCOMPARE(recordSettingsProblem(s), QString());
    QFile::remove(dir_.filePath(QStringLiteral("run.moescope")));
  }

  void settingsAreKeptBetweenUses() {
    QCOMPARE(loadRecordSettings(QStringLiteral("/runs/record.moescope")).output,
             QStringLiteral("/runs/record.moescope"));
    RecordSettings s = valid();
    s.environment = QStringLiteral("A=1\nB=2");
    s.pp = 2;
    s.order = QStringLiteral("tp-pp-dp");
    s.schedule = QStringLiteral("gpipe");
    s.rules = QStringLiteral("r.toml");
    s.steps = QStringLiteral("1:3");
    s.kernels = false;
    s.launchCalls = QStringLiteral("off");
    s.replace = true;
    saveRecordSettings(s);
    QCOMPARE(loadRecordSettings(QStringLiteral("/runs/record.moescope")), s);
  }
};

QTEST_GUILESS_MAIN(RecordSettingsTest)
#include "record_settings_test.moc"

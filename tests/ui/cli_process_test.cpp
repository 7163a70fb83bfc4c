// A moescope-cli command as the GUI runs it (CliProcess), with sh standing in for the CLI: lines of
// both channels as they come, the last message (the CLI's prefixed line first); Cancel with
// Stop::Group reaches every process of the group while a CLI that handles SIGINT (as record does)
// carries on to its end; what ignores SIGINT is killed after the timeout, the CLI itself not; a
// program that cannot start says so; destroying it ends the whole group.
#include "ui/cli_process.h"

#include <signal.h>

#include <QFile>
#include <QSignalSpy>
#include <QTest>
#include <cerrno>

using namespace moescope::ui;

namespace {

// No live process of the group is left (a zombie waits for init, which reaps it when it will).
bool groupGone(qint64 pgid) {
  return (::kill(static_cast<pid_t>(-pgid), 0) != 0 && errno == ESRCH) || processesOfGroup(pgid).isEmpty();
}

// A process of the group runs sleep: exec'd, no longer a copy of the shell that forked it (which would
// still run the shell's INT trap, not die of SIGINT).
bool sleepRuns(qint64 pgid) {
  for (const qint64 pid : processesOfGroup(pgid)) {
    QFile comm(QStringLiteral("/proc/%1/comm").arg(pid));
    if (comm.open(QIODevice::ReadOnly) && comm.readAll().trimmed() == "sleep") return true;
  }
  return false;
}

QStringList linesOf(const QSignalSpy& spy, QProcess::ProcessChannel channel) {
  QStringList lines;
  for (const QList<QVariant>& call : spy) {
    if (call.at(1).value<QProcess::ProcessChannel>() == channel) lines << call.at(0).toString();
  }
  return lines;
}

}  // namespace

class CliProcessTest : public QObject {
  Q_OBJECT

 private slots:
  void lastMessagePrefersThePrefixedLine() {
    QCOMPARE(lastMessageOf("moescope: first\nnoise\n\n", QStringLiteral("moescope: ")),
             QStringLiteral("first"));
    QCOMPARE(lastMessageOf("a\nmoescope: one\nmoescope: two\nb", QStringLiteral("moescope: ")),
             QStringLiteral("two"));
    QCOMPARE(lastMessageOf("just\n  text  \n", QStringLiteral("moescope: ")), QStringLiteral("text"));
    QCOMPARE(lastMessageOf("", QStringLiteral("moescope: ")), QString());
  }

  void linesOfBothChannels() {
    CliProcess p(QStringLiteral("sh"), QStringLiteral("moescope: "), CliProcess::Stop::Group);
    QSignalSpy lines(&p, &CliProcess::line);
    QSignalSpy finished(&p, &CliProcess::finished);
    QVERIFY(
        p.start({QStringLiteral("-c"),
                 QStringLiteral("printf 'out 1\\r\\nout 2\\n'; echo 'moescope: said' >&2; echo after >&2; "
                                "printf 'no newline'; exit 3")}));
    QVERIFY(finished.wait(10'000));
    QCOMPARE(finished.at(0).at(0).toInt(), 3);
    QCOMPARE(finished.at(0).at(1).toBool(), false);
    QCOMPARE(linesOf(lines, QProcess::StandardOutput), QStringList({"out 1", "out 2", "no newline"}));
    QCOMPARE(linesOf(lines, QProcess::StandardError), QStringList({"moescope: said", "after"}));
    QCOMPARE(p.lastMessage(), QStringLiteral("said"));
  }

  void cancelReachesTheGroupAndTheCliCarriesOn() {
    CliProcess p(QStringLiteral("sh"), QStringLiteral("moescope: "), CliProcess::Stop::Group);
    p.setKillTimeoutMs(120'000);  // longer than the wait below: SIGINT alone must end the sleep
    QSignalSpy lines(&p, &CliProcess::line);
    QSignalSpy finished(&p, &CliProcess::finished);
    QVERIFY(p.start({QStringLiteral("-c"),
                     QStringLiteral("trap 'echo \"moescope: interrupted\" >&2' INT; echo ready; sleep 60; "
                                    "echo \"moescope: carried on\" >&2")}));
    QTRY_VERIFY_WITH_TIMEOUT(linesOf(lines, QProcess::StandardOutput).contains("ready"), 10'000);
    const qint64 pgid = p.processId();
    QVERIFY(pgid > 0);
    QTRY_VERIFY_WITH_TIMEOUT(sleepRuns(pgid), 10'000);
    QCOMPARE(processesOfGroup(pgid).size(), 2);  // sh and its sleep
    QVERIFY(processesOfGroup(pgid).contains(pgid));
    p.cancel();
    QVERIFY(p.isCancelling());
    QVERIFY(finished.wait(20'000));
    QCOMPARE(finished.at(0).at(0).toInt(), 0);
    QCOMPARE(finished.at(0).at(1).toBool(), false);
    QCOMPARE(linesOf(lines, QProcess::StandardError),
             QStringList({"moescope: interrupted", "moescope: carried on"}));
    QTRY_VERIFY_WITH_TIMEOUT(groupGone(pgid), 5000);
  }

  void whatIgnoresSigintIsKilledButNotTheCli() {
    CliProcess p(QStringLiteral("sh"), QStringLiteral("moescope: "), CliProcess::Stop::Group);
    p.setKillTimeoutMs(300);
    QSignalSpy lines(&p, &CliProcess::line);
    QSignalSpy finished(&p, &CliProcess::finished);
    // The inner sh ignores SIGINT, and so does its sleep (an ignored signal stays ignored across exec).
    QVERIFY(
        p.start({QStringLiteral("-c"), QStringLiteral("trap 'echo interrupted' INT; echo ready; "
                                                      "sh -c \"trap '' INT; sleep 60\"; echo carried on")}));
    const qint64 pgid = p.processId();
    QTRY_VERIFY_WITH_TIMEOUT(sleepRuns(pgid), 10'000);
    p.cancel();
    QVERIFY(finished.wait(20'000));
    QCOMPARE(finished.at(0).at(1).toBool(), false);  // the CLI ended by itself
    QVERIFY(linesOf(lines, QProcess::StandardOutput).contains("carried on"));
    QTRY_VERIFY_WITH_TIMEOUT(groupGone(pgid), 5000);
  }

  void aProgramThatCannotStartSaysSo() {
    CliProcess p(QStringLiteral("/nonexistent/moescope-cli"), QStringLiteral("moescope: "),
                 CliProcess::Stop::Process);
    QSignalSpy failed(&p, &CliProcess::failedToStart);
    QSignalSpy finished(&p, &CliProcess::finished);
    const bool started = p.start({QStringLiteral("record")});
    QTRY_COMPARE_WITH_TIMEOUT(failed.size(), 1, 5000);
    QVERIFY(!started || !p.isRunning());
    QVERIFY2(failed.at(0).at(0).toString().startsWith("cannot run /nonexistent/moescope-cli: "),
             qPrintable(failed.at(0).at(0).toString()));
    QCOMPARE(finished.size(), 0);
  }

  void destroyingItEndsTheGroup() {
    auto p = std::make_unique<CliProcess>(QStringLiteral("sh"), QStringLiteral("moescope: "),
                                          CliProcess::Stop::Group);
    QVERIFY(p->start({QStringLiteral("-c"), QStringLiteral("trap 'exit 130' INT; sleep 60")}));
    const qint64 pgid = p->processId();
    QTRY_VERIFY_WITH_TIMEOUT(sleepRuns(pgid), 10'000);
    p.reset();
    QTRY_VERIFY_WITH_TIMEOUT(groupGone(pgid), 5000);
  }
};

QTEST_GUILESS_MAIN(CliProcessTest)
#include "cli_process_test.moc"

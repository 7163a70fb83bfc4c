// Analysis > Plan...: the settings a run starts with (its own configuration; the host options for a
// CPU run only), the `moescope-cli plan` arguments they give, and the dialog handing back what was set.
#include "ui/plan_dialog.h"

#include <QDoubleSpinBox>
#include <QSpinBox>
#include <QTest>

using namespace moescope::ui;

class PlanDialogTest : public QObject {
  Q_OBJECT

  static moescope::storage::RunInfo run(const char* backend) {
    moescope::storage::RunInfo r;
    r.backend = backend;
    r.pp = 2;
    r.microbatches = 4;
    r.schedule = moescope::storage::Schedule::OneFOneB;
    return r;
  }

 private slots:
  void aRunsOwnConfigurationAndTheHostMeasured() {
    const PlanSettings s = defaultPlanSettings(QStringLiteral("/runs/a.moescope"), run("cpu"));
    QCOMPARE(s.out, QStringLiteral("/runs/a-predicted.moescope"));
    QCOMPARE(s.pp, 2);
    QCOMPARE(s.microbatches, 4);
    QCOMPARE(s.schedule, QStringLiteral("1f1b"));
    QVERIFY(s.cpuRun);
    QCOMPARE(s.cores, -1);
    QCOMPARE(s.sliceMs, -1.0);
    const QStringList args = planArguments(s);
    QVERIFY(!args.contains(QStringLiteral("--cores")));
    QVERIFY(!args.contains(QStringLiteral("--slice-ms")));
    QCOMPARE(args.mid(0, 4), (QStringList{QStringLiteral("plan"), QStringLiteral("/runs/a.moescope"),
                                          QStringLiteral("--schedule"), QStringLiteral("1f1b")}));
  }

  void theHostOptionsOfACpuRunBecomeArguments() {
    PlanSettings s = defaultPlanSettings(QStringLiteral("/runs/a.moescope"), run("cpu"));
    s.cores = 0;
    s.sliceMs = 2.5;
    const QStringList args = planArguments(s);
    const auto after = [&](const char* flag) { return args.value(args.indexOf(QLatin1String(flag)) + 1); };
    QCOMPARE(after("--cores"), QStringLiteral("0"));
    QCOMPARE(after("--slice-ms"), QStringLiteral("2.5"));
    s.sliceMs = 0;  // processor sharing
    QCOMPARE(planArguments(s).value(planArguments(s).indexOf(QStringLiteral("--slice-ms")) + 1),
             QStringLiteral("0"));
  }

  void aGpuRunHasNoHostOptions() {
    PlanSettings s = defaultPlanSettings(QStringLiteral("/runs/g.moescope"), run("cuda"));
    QVERIFY(!s.cpuRun);
    s.cores = 4;
    s.sliceMs = 3;
    const QStringList args = planArguments(s);
    QVERIFY(!args.contains(QStringLiteral("--cores")));
    QVERIFY(!args.contains(QStringLiteral("--slice-ms")));
    PlanDialog dialog(defaultPlanSettings(QStringLiteral("/runs/g.moescope"), run("cuda")));
    for (QSpinBox* box : dialog.findChildren<QSpinBox*>()) {
      if (box->minimum() == -1) QVERIFY(!box->isEnabled());
    }
    QVERIFY(!dialog.findChild<QDoubleSpinBox*>()->isEnabled());
  }

  void theDialogHandsBackWhatWasSet() {
    PlanDialog dialog(defaultPlanSettings(QStringLiteral("/runs/a.moescope"), run("cpu")));
    auto* slice = dialog.findChild<QDoubleSpinBox*>();
    QVERIFY(slice && slice->isEnabled());
    QCOMPARE(slice->text(), QStringLiteral("fitted from the run"));
    slice->setValue(4);
    QSpinBox* cores = nullptr;
    for (QSpinBox* box : dialog.findChildren<QSpinBox*>())
      if (box->minimum() == -1) cores = box;
    QVERIFY(cores && cores->isEnabled());
    QCOMPARE(cores->text(), QStringLiteral("measured from the run"));
    cores->setValue(2);
    const PlanSettings s = dialog.settings();
    QCOMPARE(s.cores, 2);
    QCOMPARE(s.sliceMs, 4.0);
    QVERIFY(planArguments(s).contains(QStringLiteral("--slice-ms")));
  }
};

QTEST_MAIN(PlanDialogTest)
#include "plan_dialog_test.moc"

#include "ui/span_fields.h"

#include <QTest>

#include "tests/ui/test_traces.h"
#include "ui/time_format.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;

class SpanFieldsTest : public QObject {
  Q_OBJECT

  static QStringList labels(const std::vector<SpanField>& fields) {
    QStringList out;
    for (const auto& f : fields) out << QString::fromStdString(f.label);
    return out;
  }

 private slots:
  void tooltipSummaryOfAComputation() {
    const auto t = test::makeTrace(1, {{0, 0, 2500, Category::ComputeExpert, storage::Phase::Forward, 3}});
    QCOMPARE(labels(spanSummary(t, {0, 0})),
             (QStringList{"name", "category", "phase", "stage", "micro-batch", "duration"}));
  }

  void tooltipSummaryOfACommunication() {
    const auto t = test::makeTrace(
        1, {{0, 0, 1'000'000, Category::CommTpAllreduce, storage::Phase::Backward, 1, 50'000'000}});
    const auto f = spanSummary(t, {0, 0});
    QCOMPARE(labels(f), (QStringList{"name", "category", "phase", "stage", "micro-batch", "duration", "bytes",
                                     "bandwidth"}));
    QCOMPARE(QString::fromStdString(f[6].value), QString("47.7 MiB"));
    QCOMPARE(QString::fromStdString(f[7].value), QString("50.00 GB/s"));
  }

  void tooltipOfAWaitNamesTheRankWaitedFor() {
    auto t = test::makeTrace(1, {{0, 0, 2500, Category::Wait, storage::Phase::Forward, 3}});
    t.spans[0].comm_index = {0};
    t.spans[0].comm_call = {{1, 7, 3}};
    const auto f = spanSummary(t, {0, 0});
    QCOMPARE(labels(f).last(), QString("waited for"));
    QCOMPARE(QString::fromStdString(f.back().value), QString("rank 3"));
  }

  void allFields() {
    const auto t = test::makeTrace(1, {{0, 100, 400}});
    const QStringList all = labels(spanFields(t, {0, 0}));
    for (const char* l : {"name", "category", "phase", "rank", "stage", "tp rank", "dp rank", "device",
                          "track", "step", "micro-batch", "layer", "expert", "start", "end", "duration"}) {
      QVERIFY2(all.contains(QString(l)), l);
    }
  }

  void startAndEndAreExact() {
    // A 19.7 ms span 27.4 s into the run: three digits would show both ends as 27.4 s.
    const auto t = test::makeTrace(1, {{0, 0, 10}, {0, 27'412'345'678, 27'432'045'678}});
    const auto f = spanFields(t, {0, 1});
    auto value = [&](const char* label) {
      for (const auto& x : f)
        if (x.label == label) return QString::fromStdString(x.value);
      return QString();
    };
    QCOMPARE(value("start"), QString("27.412 345 678 s"));
    QCOMPARE(value("end"), QString("27.432 045 678 s"));
    QCOMPARE(value("duration"), QString("19.7 ms"));
    QCOMPARE(QString::fromStdString(formatExact(-1250)), QString("-0.000 001 250 s"));
  }

  void aKernelsLaunchCorrelationAndLaunchingSpan() {
    // A host span "attn_allreduce" (tp all-reduce of 12 MiB, span id 3) launched an NCCL kernel of
    // 1 ms and a gemm on GPU stream track 1.
    storage::Trace t = test::makeTrace(1, {});
    t.strings = {"attn_allreduce", "ncclDevKernel_AllReduce_Sum_bf16", "gemm"};
    test::addStream(t, 0, 0, "GPU 0 stream 7");  // track 1
    const storage::SpanRecord host{.track = 0,
                                   .start = 0,
                                   .end = 5'000'000,
                                   .name = 0,
                                   .category = Category::CommTpAllreduce,
                                   .bytes = 12 << 20};
    storage::addSpan(t, host);
    t.linked.push_back({3, host});
    storage::GpuActivityRecord nccl;
    nccl.track = 1;
    nccl.start = 1'000'000;
    nccl.end = 2'000'000;
    nccl.name = 1;
    nccl.stream = 7;
    nccl.correlation = 4242;
    nccl.span = 3;
    nccl.launch = {.grid_x = 2,
                   .grid_y = 1,
                   .grid_z = 1,
                   .block_x = 512,
                   .block_y = 1,
                   .block_z = 1,
                   .registers = 96,
                   .shared_static = 0,
                   .shared_dynamic = 90'000};
    storage::GpuActivityRecord gemm = nccl;
    gemm.start = 3'000'000;
    gemm.end = 3'010'000;
    gemm.name = 2;
    gemm.correlation = 4243;
    t.gpu = {nccl, gemm};
    storage::finishTrace(t);
    const auto f = spanFields(t, {1, 0});
    QMap<QString, QString> v;
    for (const auto& x : f) v.insert(QString::fromStdString(x.label), QString::fromStdString(x.value));
    QCOMPARE(v.value("name"), QString("ncclDevKernel_AllReduce_Sum_bf16"));
    QCOMPARE(v.value("record"), QString("kernel"));
    QCOMPARE(v.value("stream"), QString("7"));
    QCOMPARE(v.value("correlation id"), QString("4242"));
    QCOMPARE(v.value("launched by"), QString("attn_allreduce (rank 0 host, span 3)"));
    QCOMPARE(v.value("grid"), QString("(2, 1, 1)"));
    QCOMPARE(v.value("block"), QString("(512, 1, 1)"));
    QCOMPARE(v.value("registers"), QString("96 per thread"));
    QCOMPARE(v.value("shared memory"), QString("87.9 KiB per block (0 B static, 87.9 KiB dynamic)"));
    // An NCCL kernel carries its launching span's bytes, over its own time: 12 MiB in 1 ms.
    QCOMPARE(v.value("bytes"), QString("12.0 MiB"));
    QCOMPARE(v.value("bandwidth"), QString("12.58 GB/s"));
    // The tooltip keeps bytes and bandwidth.
    QVERIFY(labels(spanSummary(t, {1, 0})).contains(QStringLiteral("bandwidth")));
    // A gemm has no bytes.
    QVERIFY(!labels(spanFields(t, {1, 1})).contains(QStringLiteral("bytes")));
    // A record no span launched, as its tooltip shows it.
    storage::GpuActivityRecord copy;
    copy.kind = storage::GpuActivityKind::Memcpy;
    copy.bytes = 1 << 20;
    copy.start = 0;
    copy.end = 1'000'000;
    const auto r = gpuRecordFields(t, copy);
    QCOMPARE(QString::fromStdString(r[0].label), QString("name"));
    QVERIFY(labels(r).contains(QStringLiteral("launched by")));
    QVERIFY(!labels(r).contains(QStringLiteral("grid")));
  }

  void units() {
    QCOMPARE(QString::fromStdString(formatBytes(512)), QString("512 B"));
    QCOMPARE(QString::fromStdString(formatBytes(3 << 20)), QString("3.0 MiB"));
    QCOMPARE(QString::fromStdString(formatBandwidth(1000, 1000)), QString("1.00 GB/s"));
    QCOMPARE(QString::fromStdString(formatBandwidth(1000, 100'000)), QString("10.0 MB/s"));
    QCOMPARE(QString::fromStdString(formatBandwidth(1000, 0)), QString("-"));
  }
};

QTEST_APPLESS_MAIN(SpanFieldsTest)
#include "span_fields_test.moc"

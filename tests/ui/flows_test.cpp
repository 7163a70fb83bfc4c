// Flows of a selected span: a host span's arrows to the GPU work it launched and a kernel's back to its
// launch; for the span's micro-batch, each pipeline send to the neighbouring stage's receive (or, with
// no receive spans, to the peer's first work on that micro-batch; an interleaved schedule's chunks
// wrap from the last stage to the first). Checked in the flows, in their lines
// and in the rendered picture; and on the H200 sample run.
#include "ui/flows.h"

#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include "storage/run_reader.h"
#include "tests/ui/test_traces.h"
#include "ui/timeline_palette.h"
#include "ui/timeline_render.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;
using storage::Phase;

namespace {

// Rank 0 (stage 0): host track 0 and GPU stream track 2; rank 1 (stage 1): host track 1. Names: 0
// "attention", 1 "send_activation", 2 "recv_activation", 3 "send_grad", 4 "recv_grad", 5 "gemm".
//   track 0: attention [0, 1000) mb 1 fwd (span id 5, launched gemm [100, 200) and [500, 800) on track 2)
//            send_activation [1000, 1100) mb 1 fwd; recv_grad [1950, 2200) mb 1 bwd; attention [3000, 3100)
//            mb 2
//   track 1: recv_activation [900, 1200) mb 1 fwd; send_grad [2000, 2100) mb 1 bwd
storage::Trace pipeline(bool receives = true) {
  storage::Trace t = test::makeTrace(2, {});
  t.strings = {"attention", "send_activation", "recv_activation", "send_grad", "recv_grad", "gemm"};
  t.ranks[1].stage = 1;
  test::addStream(t, 0, 0, "GPU 0 stream 7");  // track 2
  auto span = [&](int32_t track, int64_t a, int64_t b, uint32_t name, Category c, Phase p, int32_t mb) {
    const storage::SpanRecord r{.track = track,
                                .start = a,
                                .end = b,
                                .name = name,
                                .category = c,
                                .phase = p,
                                .step = 0,
                                .microbatch = mb};
    storage::addSpan(t, r);
    return r;
  };
  const auto attention = span(0, 0, 1000, 0, Category::ComputeAttention, Phase::Forward, 1);
  span(0, 1000, 1100, 1, Category::CommPpSendrecv, Phase::Forward, 1);
  if (receives) span(0, 1950, 2200, 4, Category::CommPpSendrecv, Phase::Backward, 1);
  span(0, 3000, 3100, 0, Category::ComputeAttention, Phase::Forward, 2);
  if (receives) span(1, 900, 1200, 2, Category::CommPpSendrecv, Phase::Forward, 1);
  span(1, 1300, 1500, 0, Category::ComputeAttention, Phase::Forward, 1);
  span(1, 2000, 2100, 3, Category::CommPpSendrecv, Phase::Backward, 1);
  if (!receives) span(0, 2300, 2400, 0, Category::ComputeAttention, Phase::Backward, 1);
  t.linked.push_back({5, attention});
  for (auto [a, b] : {std::pair{100, 200}, std::pair{500, 800}}) {
    storage::GpuActivityRecord g;
    g.track = 2;
    g.start = a;
    g.end = b;
    g.name = 5;
    g.span = 5;
    t.gpu.push_back(g);
  }
  storage::finishTrace(t);
  return t;
}

std::vector<Flow> ofKind(const std::vector<Flow>& flows, FlowKind kind) {
  std::vector<Flow> out;
  for (const Flow& f : flows)
    if (f.kind == kind) out.push_back(f);
  return out;
}

// A pixel within radius of (x, y) close to colour (antialiased lines blend at their edges).
bool colourNear(const QImage& image, int x, int y, const QColor& colour, int radius = 1) {
  for (int dx = -radius; dx <= radius; ++dx) {
    for (int dy = -radius; dy <= radius; ++dy) {
      const QColor c = image.pixelColor(x + dx, y + dy);
      if (std::abs(c.red() - colour.red()) + std::abs(c.green() - colour.green()) +
              std::abs(c.blue() - colour.blue()) <
          60)
        return true;
    }
  }
  return false;
}

}  // namespace

class FlowsTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;

 private slots:
  void aHostSpanToTheKernelsItLaunched() {
    const storage::Trace t = pipeline();
    const auto flows = flowsOf(t, {0, 0});
    const auto launch = ofKind(flows, FlowKind::Launch);
    QCOMPARE(launch.size(), size_t(2));
    QCOMPARE(launch[0], (Flow{{0, 0}, {2, 0}, FlowKind::Launch}));
    QCOMPARE(launch[1], (Flow{{0, 0}, {2, 1}, FlowKind::Launch}));
    QCOMPARE(*gpuRecordOf(t, {2, 1}), size_t(1));
    QVERIFY(!gpuRecordOf(t, {0, 0}));  // a host span stands for no GPU record
  }

  void aKernelToItsLaunch() {
    const storage::Trace t = pipeline();
    const auto launch = ofKind(flowsOf(t, {2, 1}), FlowKind::Launch);
    QCOMPARE(launch.size(), size_t(1));
    QCOMPARE(launch[0], (Flow{{0, 0}, {2, 1}, FlowKind::Launch}));
    QCOMPARE(*launchingSpan(t, t.gpu[0]), (SpanRef{0, 0}));
  }

  void sendsToTheNeighbouringStagesReceiveForTheSelectedMicroBatch() {
    const storage::Trace t = pipeline();
    // Track 0 sorted: attention (0), send_activation (1), recv_grad (2), attention mb 2 (3); track 1:
    // recv_activation (0), attention (1), send_grad (2).
    const auto p = ofKind(flowsOf(t, {0, 0}), FlowKind::Pipeline);
    QCOMPARE(p.size(), size_t(2));
    QCOMPARE(p[0], (Flow{{0, 1}, {1, 0}, FlowKind::Pipeline}));  // forward: stage 0 to stage 1
    QCOMPARE(p[1], (Flow{{1, 2}, {0, 2}, FlowKind::Pipeline}));  // backward: stage 1 to stage 0
    // Micro-batch 2 sent nothing.
    QVERIFY(ofKind(flowsOf(t, {0, 3}), FlowKind::Pipeline).empty());
  }

  void withoutReceivesToThePeersFirstWorkOnTheMicroBatch() {
    const storage::Trace t = pipeline(false);
    // Track 0: attention (0), send_activation (1), attention bwd mb 1 [2300) (2), attention mb 2 (3);
    // track 1: attention (0), send_grad (1).
    const auto p = ofKind(flowsOf(t, {0, 0}), FlowKind::Pipeline);
    QCOMPARE(p.size(), size_t(2));
    QCOMPARE(p[0], (Flow{{0, 1}, {1, 0}, FlowKind::Pipeline}));
    QCOMPARE(p[1], (Flow{{1, 1}, {0, 2}, FlowKind::Pipeline}));
  }

  // Interleaved, pp 2 with 2 chunks: stage 1's chunk 0 sends to stage 0's chunk 1 (the pipeline
  // wraps), and stage 0's backward of chunk 1 goes to stage 1's chunk 0; each send to the receive of
  // its own chunk.
  void anInterleavedPipelineWrapsToTheNextChunk() {
    storage::Trace t = test::makeTrace(2, {});
    t.strings = {"attention", "send_activation", "recv_activation", "send_grad", "recv_grad"};
    t.ranks[1].stage = 1;
    t.run.pp = 2;
    t.run.virtual_stages = 2;
    auto span = [&](int32_t track, int64_t a, int64_t b, uint32_t name, Phase p, int32_t chunk) {
      storage::addSpan(t, {.track = track,
                           .start = a,
                           .end = b,
                           .name = name,
                           .category = name == 0 ? Category::ComputeAttention : Category::CommPpSendrecv,
                           .phase = p,
                           .step = 0,
                           .microbatch = 0,
                           .chunk = chunk});
    };
    span(0, 0, 100, 0, Phase::Forward, 0);       // track 0: (0)
    span(0, 100, 150, 1, Phase::Forward, 0);     // (1) to stage 1, chunk 0
    span(0, 400, 500, 2, Phase::Forward, 1);     // (2) from stage 1's chunk 0
    span(0, 600, 650, 1, Phase::Forward, 1);     // (3) to stage 1, chunk 1
    span(0, 1000, 1050, 3, Phase::Backward, 1);  // (4) to stage 1, chunk 0
    // Chunk 1's receive completes first (times chosen so that only the chunk tells them apart).
    span(1, 120, 700, 2, Phase::Forward, 1);     // track 1: (0)
    span(1, 130, 800, 2, Phase::Forward, 0);     // (1)
    span(1, 300, 350, 1, Phase::Forward, 0);     // (2) to stage 0, chunk 1
    span(1, 1020, 1100, 4, Phase::Backward, 0);  // (3)
    storage::finishTrace(t);
    const auto p = ofKind(flowsOf(t, {0, 0}), FlowKind::Pipeline);
    QCOMPARE(p, (std::vector<Flow>{{{0, 1}, {1, 1}, FlowKind::Pipeline},
                                   {{0, 3}, {1, 0}, FlowKind::Pipeline},
                                   {{0, 4}, {1, 3}, FlowKind::Pipeline},
                                   {{1, 2}, {0, 2}, FlowKind::Pipeline}}));
  }

  void linesAndTheRenderedArrows() {
    const storage::Trace t = pipeline();
    RenderOptions o;
    o.size = QSize(1280, 240);
    o.range = TimeRange{0, 2500};
    o.legend = false;
    o.selected = SpanRef{0, 0};
    const TimelineSummary summary = summarizeTrace(t);
    o.summary = &summary;
    const TimelineLayout layout = layoutTimeline(t, summary, {}, o.metrics);
    const TimeMapping m = renderMapping(t, o);
    const auto lines = flowLines(t, summary, layout, m, flowsOf(t, {0, 0}));
    QCOMPARE(lines.size(), size_t(4));
    // The first launch: from the host box's bottom at the kernel's start to the kernel's top.
    const TimelineRow& host = layout.rows[size_t(layout.rowOfTrack(0))];
    const TimelineRow& stream = layout.rows[size_t(layout.rowOfTrack(2))];
    QCOMPARE(lines[0].kind, FlowKind::Launch);
    QCOMPARE(lines[0].x0, m.toX(100));
    QCOMPARE(lines[0].x1, m.toX(100));
    QCOMPARE(lines[0].y0, double(layout.boxBottom(host)));
    QCOMPARE(lines[0].y1, double(layout.boxTop(stream)));
    // The forward send: from its end to the receive's end, box middle to box middle.
    const FlowLine& send = lines[2];
    QCOMPARE(send.kind, FlowKind::Pipeline);
    QCOMPARE(send.x0, m.toX(1100));
    QCOMPARE(send.x1, m.toX(1200));
    const TimelineRow& peer = layout.rows[size_t(layout.rowOfTrack(1))];
    QCOMPARE(send.y1, (layout.boxTop(peer) + layout.boxBottom(peer)) / 2.0);

    // Drawn: the launch arrow in the margin between the host box and the stream's box, the pipeline
    // arrow half way along its line.
    const QImage image = renderTimeline(t, o);
    const int lw = o.metrics.labelWidth;
    const auto& l = lines[0];
    QVERIFY(colourNear(image, lw + int(l.x0), int((l.y0 + l.y1) / 2), palette::kLaunchFlow));
    const int mx = lw + int((send.x0 + send.x1) / 2), my = int((send.y0 + send.y1) / 2);
    QVERIFY(colourNear(image, mx, my, palette::kPipelineFlow));
    // Nothing selected: no arrow there.
    o.selected.reset();
    QVERIFY(!colourNear(renderTimeline(t, o), mx, my, palette::kPipelineFlow));
  }

  void onTheH200Sample() {
    // The sample run traced on two H200s: a host span's launch flows are exactly its GPU records.
    const QString copy = dir_.filePath(QStringLiteral("h200.moescope"));
    QVERIFY(QFile::copy(QStringLiteral(MOESCOPE_SOURCE_DIR "/samples/ppmoe-tp2-h200.moescope"), copy));
    const storage::Trace t = storage::RunReader::open(copy.toStdString())->load();
    // The linked span with the most records.
    std::map<int64_t, int> records;
    for (const auto& g : t.gpu)
      if (g.span >= 0) ++records[g.span];
    const auto most = std::max_element(records.begin(), records.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; });
    const storage::LinkedSpan* l = t.linkedSpan(most->first);
    QVERIFY(l);
    const auto& c = t.spans[size_t(l->span.track)];
    std::optional<SpanRef> host;
    for (uint32_t i = 0; i < c.size(); ++i)
      if (c.start[i] == l->span.start && c.endAt(i) == l->span.end && c.name[i] == l->span.name)
        host = SpanRef{l->span.track, i};
    QVERIFY(host);
    const auto launch = ofKind(flowsOf(t, *host), FlowKind::Launch);
    QCOMPARE(int(launch.size()), most->second);
    for (const Flow& f : launch) QCOMPARE(t.tracks[size_t(f.to.track)].kind, storage::TrackKind::GpuStream);
  }
};

QTEST_MAIN(FlowsTest)
#include "flows_test.moc"

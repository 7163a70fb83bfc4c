#include "ui/render_command.h"

#include <QDir>
#include <QFileInfo>
#include <QRegularExpression>
#include <exception>
#include <optional>
#include <vector>

#include "storage/activity.h"
#include "storage/analysis_breakdown.h"
#include "storage/analysis_compare.h"
#include "storage/analysis_moe.h"
#include "storage/analysis_range.h"
#include "storage/gpu_time.h"
#include "storage/run_reader.h"
#include "ui/breakdown_picture.h"
#include "ui/compare_picture.h"
#include "ui/curves_picture.h"
#include "ui/moe_picture.h"
#include "ui/picture_export.h"
#include "ui/range_summary_picture.h"
#include "ui/span_access.h"
#include "ui/time_format.h"
#include "ui/timeline_render.h"

namespace moescope::ui {
namespace {

constexpr const char* kRangeHelp =
    "units ns, us, ms or s (a plain number is ns), each within 2^62 ns (146 years), e.g. 0.21s:0.25s or "
    "210ms:250ms";

// A picture that could not be written is a failure of the work, not bad input: exit 1.
int cannotWrite(std::FILE* err, const QString& message) {
  std::fprintf(err, "moescope: %s\n", qPrintable(message));
  return 1;
}

int writeOut(std::FILE* out, std::FILE* err, const QString& path, QSize size, const PaintFunction& paint,
             const QString& what) {
  QString error;
  if (!writePicture(path, size, paint, &error))
    return cannotWrite(err, QStringLiteral("cannot write %1: %2").arg(path, error));
  std::fprintf(out, "wrote %s (%dx%d, %s)\n", qPrintable(QFileInfo(path).absoluteFilePath()), size.width(),
               size.height(), qPrintable(what));
  return 0;
}

std::optional<TimeRange> parseRange(const QString& text) {
  return parseTimeRange(text.toStdString());
}

// NAME[@T]: the first span named NAME (exactly) that starts at or after origin + T.
std::optional<SpanRef> findSpan(const storage::Trace& trace, const QString& spec, int64_t origin,
                                QString* why) {
  QString name = spec;
  int64_t from = INT64_MIN;
  if (const int at = static_cast<int>(spec.lastIndexOf(QLatin1Char('@'))); at >= 0) {
    name = spec.left(at);
    const auto t = parseDuration(spec.mid(at + 1).toStdString());
    if (!t) {
      *why = QStringLiteral("--select wants NAME or NAME@T with T in %1, got \"%2\"").arg(kRangeHelp, spec);
      return std::nullopt;
    }
    from = origin + *t;
  }
  std::optional<SpanRef> best;
  int64_t bestStart = INT64_MAX;
  for (size_t t = 0; t < trace.spans.size(); ++t) {
    const auto& c = trace.spans[t];
    auto i = static_cast<size_t>(std::lower_bound(c.start.begin(), c.start.end(), from) - c.start.begin());
    for (; i < c.size() && c.start[i] < bestStart; ++i) {
      if (trace.name(c.name[i]) == name.toStdString()) {
        best = SpanRef{static_cast<int32_t>(t), static_cast<uint32_t>(i)};
        bestStart = c.start[i];
        break;
      }
    }
  }
  if (!best)
    *why = QStringLiteral("--select: no span named \"%1\"%2")
               .arg(name, from == INT64_MIN ? QString() : QStringLiteral(" at or after that time"));
  return best;
}

bool gpuTime(const storage::Trace& trace, const QString& time) {
  return time.isEmpty() ? !trace.gpu.empty() : time == QLatin1String("gpu");
}

}  // namespace

int badInput(std::FILE* err, const QString& message) {
  std::fprintf(err, "moescope: %s\n", qPrintable(message));
  return 2;
}

int renderPicture(const RenderRequest& r, std::FILE* out, std::FILE* err) {
  const QString& view = r.view;
  if (view != QLatin1String("timeline") && view != QLatin1String("breakdown") &&
      view != QLatin1String("compare") && view != QLatin1String("moe") && view != QLatin1String("curves"))
    return badInput(
        err,
        QStringLiteral("--view wants timeline, breakdown, compare, moe or curves, got \"%1\"").arg(view));
  if (view == QLatin1String("curves")    ? r.runs.isEmpty()
      : view == QLatin1String("compare") ? r.runs.size() < 2
                                         : r.runs.size() != 1) {
    return badInput(err,
                    view == QLatin1String("compare") ? QStringLiteral("--view compare takes two or more RUNs")
                    : view == QLatin1String("curves") ? QStringLiteral("--view curves takes one or more RUNs")
                                                      : QStringLiteral("--render takes exactly one RUN"));
  }
  if (!r.time.isEmpty() && r.time != QLatin1String("host") && r.time != QLatin1String("gpu"))
    return badInput(err, QStringLiteral("--time wants host or gpu, got \"%1\"").arg(r.time));
  const auto size = QRegularExpression(QStringLiteral("^(\\d{1,6})x(\\d{1,6})$")).match(r.size);
  if (!size.hasMatch() || size.captured(1).toInt() < 300 || size.captured(2).toInt() < 100 ||
      size.captured(1).toInt() > 16384 || size.captured(2).toInt() > 16384) {
    return badInput(
        err, QStringLiteral("--size wants WxH between 300x100 and 16384x16384, got \"%1\"").arg(r.size));
  }
  RenderOptions options;
  options.size = QSize(size.captured(1).toInt(), size.captured(2).toInt());
  std::optional<TimeRange> range, area;
  if (!r.range.isEmpty() && !(range = parseRange(r.range)))
    return badInput(
        err, QStringLiteral("--range wants T0:T1 with T1 > T0, %1; got \"%2\"").arg(kRangeHelp, r.range));
  if (!r.area.isEmpty() && !(area = parseRange(r.area)))
    return badInput(
        err, QStringLiteral("--area wants T0:T1 with T1 > T0, %1; got \"%2\"").arg(kRangeHelp, r.area));
  std::vector<storage::Trace> traces;
  try {
    for (const QString& run : r.runs) traces.push_back(storage::RunReader::open(run.toStdString())->load());
  } catch (const std::exception& e) {
    return badInput(err, QString::fromUtf8(e.what()));
  }

  if (view == QLatin1String("compare")) {
    std::vector<const storage::Trace*> pointers;
    std::vector<storage::RunSummary> summaries;
    for (const storage::Trace& t : traces) {
      pointers.push_back(&t);
      summaries.push_back(storage::summarizeRun(t));
    }
    const storage::Comparison comparison = storage::compareRuns(summaries);
    ComparePictureOptions co;
    co.width = options.size.width();
    const QSize pictureSize = comparePictureSize(pointers, comparison, co);
    return writeOut(
        out, err, r.out, pictureSize,
        [&](QPainter& p) { paintCompare(p, pictureSize, pointers, comparison, co); },
        QStringLiteral("%1 runs compared").arg(traces.size()));
  }

  if (view == QLatin1String("curves")) {
    std::vector<RunCurves> curves;
    for (const storage::Trace& t : traces) curves.push_back(runCurves(t));
    const QSize pictureSize = curvesPictureSize(options.size.width());
    const QString title = QStringLiteral("curves: %1").arg(r.runs.join(QStringLiteral(" · ")));
    return writeOut(
        out, err, r.out, pictureSize, [&](QPainter& p) { paintCurves(p, pictureSize, curves, title); },
        QStringLiteral("curves of %1 runs").arg(traces.size()));
  }

  const storage::Trace& trace = traces.front();
  if (view == QLatin1String("moe")) {
    MoePictureData data;
    data.title = QStringLiteral("%1 · MoE load per layer and expert, per step")
                     .arg(QString::fromStdString(trace.run.name));
    data.grid = storage::moeLoadGrid(trace, false);
    data.stats = storage::analyzeMoe(trace);
    data.steps = trace.steps;
    const QSize pictureSize = moePictureSize(data.grid, options.size.width());
    return writeOut(
        out, err, r.out, pictureSize, [&](QPainter& p) { paintMoe(p, pictureSize, data); },
        QStringLiteral("MoE load of %1 layers").arg(data.grid.layers.size()));
  }
  const int64_t origin = timelineExtent(trace).start;
  if (range)
    options.range = TimeRange{origin + range->start, origin + range->end};
  else if (r.steady)
    options.range = steadySteps(trace);
  const bool gpu = gpuTime(trace, r.time);
  if (view == QLatin1String("breakdown")) {
    const auto host = storage::hostActivity(trace);
    std::vector<int32_t> steps;
    if (options.range)
      steps =
          storage::stepsIntersecting(storage::stepExtents(host), options.range->start, options.range->end);
    const storage::Breakdown breakdown =
        storage::breakdownOfSteps(gpu ? storage::gpuActivity(trace) : host, steps);
    const QSize pictureSize = breakdownPictureSize(breakdown, options.size.width());
    const QString title =
        QStringLiteral("%1 · %2 · %3")
            .arg(QString::fromStdString(trace.run.name),
                 gpu ? QStringLiteral("GPU time") : QStringLiteral("host time"), stepsText(breakdown.steps));
    return writeOut(
        out, err, r.out, pictureSize,
        [&](QPainter& p) { paintBreakdown(p, pictureSize, breakdown, BreakdownUnit::Time, title); },
        QStringLiteral("breakdown of %1").arg(stepsText(breakdown.steps)));
  }

  const TimelineSummary summary = summarizeTrace(trace);
  options.summary = &summary;
  if (!r.select.isEmpty()) {
    QString why;
    options.selected = findSpan(trace, r.select, origin, &why);
    if (!options.selected) return badInput(err, why);
  }
  SpanSearch search;
  if (!r.search.isEmpty()) {
    search.setQuery(trace, r.search.toStdString());
    options.search = &search;
  }
  if (!area) {
    return writeOut(
        out, err, r.out, options.size, [&](QPainter& p) { paintTimelinePicture(p, trace, options); },
        QStringLiteral("%1 spans").arg(trace.spanCount()));
  }
  // The area selection, and under the timeline what it holds: by category and by name or kernel.
  options.area = AreaSelection{{origin + area->start, origin + area->end}, allTracks(trace)};
  const storage::RangeSummary s = storage::summarizeRange(trace, options.area->tracks,
                                                          options.area->range.start, options.area->range.end);
  const RangeTable left = gpu ? RangeTable::GpuCategories : RangeTable::HostCategories;
  const RangeTable right = gpu ? RangeTable::Kernels : RangeTable::Names;
  const int tableHeight = std::max(rangeSummaryHeight(s, left), rangeSummaryHeight(s, right));
  const QSize pictureSize(options.size.width(), options.size.height() + tableHeight);
  const QString when = QString::fromStdString(formatDuration(area->duration()));
  return writeOut(
      out, err, r.out, pictureSize,
      [&](QPainter& p) {
        paintTimelinePicture(p, trace, options);
        const int half = pictureSize.width() / 2;
        const int y = options.size.height();
        p.fillRect(QRect(0, y, pictureSize.width(), tableHeight), Qt::white);
        paintRangeSummary(p, QRect(0, y, half, tableHeight), s, left,
                          QStringLiteral("Area selection (%1, every row): %2")
                              .arg(when, gpu ? QStringLiteral("GPU time by category")
                                             : QStringLiteral("host time by category")));
        paintRangeSummary(
            p, QRect(half, y, pictureSize.width() - half, tableHeight), s, right,
            gpu ? QStringLiteral("GPU records by kernel") : QStringLiteral("host spans by name"));
      },
      QStringLiteral("%1 spans, an area of %2").arg(trace.spanCount()).arg(when));
}

int picturesWithoutDisplay(const QStringList& runs, std::FILE* out, std::FILE* err) {
  if (runs.isEmpty())
    return badInput(
        err,
        QStringLiteral("no display to open a window on; give a RUN to get pictures of it, or use --render"));
  int status = 0;
  for (const QString& run : runs) {
    storage::Trace trace;
    try {
      trace = storage::RunReader::open(run.toStdString())->load();
    } catch (const std::exception& e) {
      status = badInput(err, QString::fromUtf8(e.what()));
      continue;
    }
    const QFileInfo info(run);
    const QString base = info.dir().filePath(info.completeBaseName());
    const TimelineSummary summary = summarizeTrace(trace);
    RenderOptions options;
    options.summary = &summary;
    options.size = fittedSize(trace, summary, 2000, options.metrics);
    std::vector<std::pair<QString, std::optional<TimeRange>>> pictures = {
        {base + ".timeline.png", std::nullopt}};
    if (auto steps = middleSteps(trace, 2)) pictures.emplace_back(base + ".steps.png", steps);
    for (const auto& [path, range] : pictures) {
      options.range = range;
      if (!renderTimeline(trace, options).save(path)) {
        status = cannotWrite(err, QStringLiteral("cannot write %1").arg(path));
        continue;
      }
      std::fprintf(out, "wrote %s (%s)\n", qPrintable(QFileInfo(path).absoluteFilePath()),
                   range ? "two steps from the middle of the run" : "the whole run");
    }
  }
  std::fprintf(
      out,
      "No display, so moescope drew the runs instead; open the pictures, or run moescope where there is a "
      "display.\n");
  return status;
}

}  // namespace moescope::ui

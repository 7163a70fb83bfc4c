#include "ui/label_cache.h"

#include <QFontMetricsF>

namespace moescope::ui {
namespace {

using storage::Phase;

quint64 keyOf(const storage::Trace& trace, const DrawItem& item) {
  const auto& c = trace.spans[static_cast<size_t>(item.track)];
  const quint64 name = c.name[item.first];
  const quint64 mb = static_cast<quint16>(item.microbatch);
  const quint64 chunk = static_cast<quint8>(c.chunk[item.first]);  // kNone: 255
  return (name << 32) | (chunk << 24) | (mb << 8) | static_cast<quint64>(item.phase);
}

QStaticText prepared(const QString& s, const QFont& font) {
  QStaticText t(s);
  t.setTextFormat(Qt::PlainText);
  t.setPerformanceHint(QStaticText::AggressiveCaching);
  t.prepare(QTransform(), font);
  return t;
}

}  // namespace

BoxLabelTexts boxLabelTexts(const storage::Trace& trace, const DrawItem& item) {
  const auto& c = trace.spans[static_cast<size_t>(item.track)];
  QString mb;
  if (item.microbatch >= 0) {
    // F3, B3, W3 and, with an interleaved schedule's chunks, F3.1 (the rank headers' labels).
    const bool pass = item.phase == Phase::Forward || shadedAsBackward(item.phase);
    mb = pass ? QString::fromStdString(phaseLabel(item.phase, item.microbatch, c.chunk[item.first]))
              : QString::number(item.microbatch);
  }
  const QString name = QString::fromUtf8(trace.name(c.name[item.first]));
  return {mb.isEmpty() ? name : mb + QStringLiteral(" ") + name, mb};
}

void LabelCache::useFont(const QFont& font) {
  if (font != font_ || boxes_.size() > kMaxEntries || texts_.size() > kMaxEntries) {
    clear();
    font_ = font;
  }
}

void LabelCache::clear() {
  boxes_.clear();
  texts_.clear();
}

const LabelCache::Entry& LabelCache::get(const storage::Trace& trace, const DrawItem& item,
                                         const QFont& font) {
  useFont(font);
  const quint64 key = keyOf(trace, item);
  auto it = boxes_.find(key);
  if (it != boxes_.end()) return *it;
  const BoxLabelTexts texts = boxLabelTexts(trace, item);
  const QFontMetricsF fm(font);
  Entry e;
  e.full = prepared(texts.full, font);
  e.fullWidth = texts.full.isEmpty() ? 0 : fm.horizontalAdvance(texts.full);
  e.brief = prepared(texts.brief, font);
  e.briefWidth = texts.brief.isEmpty() ? 0 : fm.horizontalAdvance(texts.brief);
  return *boxes_.insert(key, e);
}

const QStaticText& LabelCache::text(const QString& s, const QFont& font) {
  useFont(font);
  auto it = texts_.find(s);
  if (it != texts_.end()) return *it;
  return *texts_.insert(s, prepared(s, font));
}

}  // namespace moescope::ui

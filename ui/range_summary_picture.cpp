#include "ui/range_summary_picture.h"

#include <QFontMetrics>
#include <algorithm>

#include "ui/time_format.h"
#include "ui/timeline_palette.h"

namespace moescope::ui {
namespace {

constexpr int kRow = 20;

QColor swatch(RangeTable table, const std::string& label) {
  if (table != RangeTable::HostCategories && table != RangeTable::GpuCategories) return palette::kUtilisation;
  const auto c = storage::categoryFromName(label);
  return c ? categoryColor(*c) : palette::kFolded;
}

}  // namespace

int rangeSummaryHeight(const storage::RangeSummary& s, RangeTable table) {
  const int rows = std::min(static_cast<int>(rangeRows(s, table).size()), kMaxPictureRows);
  return kRow * (2 + std::max(rows, 1)) + 8;
}

void paintRangeSummary(QPainter& p, const QRect& rect, const storage::RangeSummary& s, RangeTable table,
                       const QString& title) {
  p.fillRect(rect, palette::kBackground);
  QFont font = p.font();
  QFont bold = font;
  bold.setBold(true);
  const QFontMetrics fm(font);
  int y = rect.top() + 4;
  p.setPen(palette::kLabelText);
  p.setFont(bold);
  p.drawText(QRect(rect.left() + 10, y, rect.width() - 20, kRow), Qt::AlignLeft | Qt::AlignVCenter, title);
  y += kRow;
  const auto& rows = rangeRows(s, table);
  // The label takes what the five numbers and a short share bar leave.
  const int numW = 84;
  const int labelW = std::clamp(rect.width() - 20 - 5 * numW - 90, 140, 420);
  const QStringList headers = {QStringLiteral("count"), QStringLiteral("total"), QStringLiteral("mean"),
                               QStringLiteral("max"), QStringLiteral("share")};
  auto col = [&](int i) { return rect.left() + 10 + labelW + i * numW; };
  p.drawText(QRect(rect.left() + 28, y, labelW, kRow), Qt::AlignLeft | Qt::AlignVCenter,
             table == RangeTable::Names     ? QStringLiteral("span name")
             : table == RangeTable::Kernels ? QStringLiteral("kernel")
                                            : QStringLiteral("category"));
  for (int i = 0; i < headers.size(); ++i)
    p.drawText(QRect(col(i), y, numW - 8, kRow), Qt::AlignRight | Qt::AlignVCenter, headers[i]);
  p.setFont(font);
  y += kRow;
  if (rows.empty()) {
    p.drawText(QRect(rect.left() + 28, y, rect.width() - 40, kRow), Qt::AlignLeft | Qt::AlignVCenter,
               QStringLiteral("nothing in the selection"));
    return;
  }
  const int barLeft = col(5) + 8, barWidth = std::max(rect.right() - 10 - barLeft, 0);
  for (size_t r = 0; r < rows.size() && r < static_cast<size_t>(kMaxPictureRows); ++r) {
    const storage::RangeRow& row = rows[r];
    if (r % 2 == 0) p.fillRect(QRect(rect.left() + 6, y, rect.width() - 12, kRow), palette::kRowAlternate);
    p.fillRect(QRect(rect.left() + 10, y + 5, 12, 10), swatch(table, row.label));
    p.setPen(palette::kLabelText);
    p.drawText(QRect(rect.left() + 28, y, labelW - 20, kRow), Qt::AlignLeft | Qt::AlignVCenter,
               fm.elidedText(QString::fromStdString(row.label), Qt::ElideMiddle, labelW - 24));
    const QString cells[] = {QString::number(row.count), QString::fromStdString(formatDuration(row.total_ns)),
                             QString::fromStdString(formatDuration(static_cast<int64_t>(row.mean_ns + 0.5))),
                             QString::fromStdString(formatDuration(row.max_ns)),
                             QStringLiteral("%1%").arg(row.share * 100, 0, 'f', 1)};
    for (int i = 0; i < 5; ++i)
      p.drawText(QRect(col(i), y, numW - 8, kRow), Qt::AlignRight | Qt::AlignVCenter, cells[i]);
    if (barWidth > 0)
      p.fillRect(QRect(barLeft, y + 6, static_cast<int>(barWidth * row.share), kRow - 12),
                 swatch(table, row.label));
    y += kRow;
  }
}

}  // namespace moescope::ui

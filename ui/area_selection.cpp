#include "ui/area_selection.h"

namespace moescope::ui {

std::vector<int32_t> tracksOfRows(const storage::Trace& trace, const TimelineLayout& layout, int rowA,
                                  int rowB) {
  std::vector<int32_t> out;
  if (layout.rows.empty()) return out;
  const int last = static_cast<int>(layout.rows.size()) - 1;
  const int a = std::clamp(std::min(rowA, rowB), 0, last), b = std::clamp(std::max(rowA, rowB), 0, last);
  for (int r = a; r <= b; ++r) {
    const TimelineRow& row = layout.rows[static_cast<size_t>(r)];
    if (row.kind == TimelineRow::Kind::Track) {
      out.push_back(row.track);
    } else if (row.kind == TimelineRow::Kind::Group) {
      for (const auto& t : trace.tracks) {
        if (t.rank == row.rank && t.kind != storage::TrackKind::Counter) out.push_back(t.id);
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<int32_t> allTracks(const storage::Trace& trace) {
  std::vector<int32_t> out;
  for (const auto& t : trace.tracks) {
    if (t.kind != storage::TrackKind::Counter) out.push_back(t.id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace moescope::ui

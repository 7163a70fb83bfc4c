// Box labels laid out once and reused: text shaping is the dearest part of painting a frame, and a
// timeline shows the same few labels ("F3", "B3 attention") over and over. Keyed by
// what a label says (name id, micro-batch, phase), kept across frames,
// emptied when the font changes or the cache grows large.
#pragma once

#include <QFont>
#include <QHash>
#include <QStaticText>
#include <QString>

#include "storage/trace.h"
#include "ui/draw_list.h"

namespace moescope::ui {

// The two texts a box may carry: the full one, and a shorter one for narrower boxes.
struct BoxLabelTexts {
  QString full, brief;
};

// "F3 attention" / "F3" for a span of micro-batch 3's forward pass, "attention" alone without a
// micro-batch.
BoxLabelTexts boxLabelTexts(const storage::Trace& trace, const DrawItem& item);

class LabelCache {
 public:
  struct Entry {
    QStaticText full, brief;
    double fullWidth = 0, briefWidth = 0;  // 0 when the text is empty
  };

  static constexpr int kMaxEntries = 20000;

  // The returned reference holds until the next call.
  const Entry& get(const storage::Trace& trace, const DrawItem& item, const QFont& font);
  const QStaticText& text(const QString& s, const QFont& font);
  void clear();

 private:
  void useFont(const QFont& font);
  QFont font_;
  QHash<quint64, Entry> boxes_;
  QHash<QString, QStaticText> texts_;
};

}  // namespace moescope::ui

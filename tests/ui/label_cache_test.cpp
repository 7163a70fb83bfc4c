#include "ui/label_cache.h"

#include <QTest>

#include "tests/ui/test_traces.h"

using namespace moescope;
using namespace moescope::ui;
using storage::Category;
using storage::Phase;

class LabelCacheTest : public QObject {
  Q_OBJECT

  storage::Trace trace_ = test::makeTrace(1, {{0, 0, 100, Category::ComputeAttention, Phase::Backward, 3},
                                              {0, 100, 200, Category::ComputeAttention, Phase::None}});

  DrawItem span(uint32_t index) const {
    DrawItem item;
    item.first = index;
    const auto& c = trace_.spans[0];
    item.microbatch = c.microbatch[index];
    item.phase = c.phase[index];
    return item;
  }

 private slots:
  void texts() {
    QCOMPARE(boxLabelTexts(trace_, span(0)).full, QString("B3 span"));
    QCOMPARE(boxLabelTexts(trace_, span(0)).brief, QString("B3"));
    QCOMPARE(boxLabelTexts(trace_, span(1)).full, QString("span"));
    QCOMPARE(boxLabelTexts(trace_, span(1)).brief, QString());
  }

  void measuredOnceAndReused() {
    LabelCache cache;
    QFont font;
    font.setPixelSize(11);
    const LabelCache::Entry a = cache.get(trace_, span(0), font);  // a copy: entries move as the cache grows
    QVERIFY(a.fullWidth > a.briefWidth);
    QVERIFY(a.briefWidth > 0);
    QCOMPARE(a.full.text(), QString("B3 span"));
    const auto* first = &cache.get(trace_, span(0), font);
    QCOMPARE(&cache.get(trace_, span(0), font), first);  // the same entry while nothing is added
    QCOMPARE(cache.get(trace_, span(1), font).briefWidth, 0.0);
    QFont bigger = font;
    bigger.setPixelSize(22);
    QVERIFY(cache.get(trace_, span(0), bigger).fullWidth > a.fullWidth * 1.5);  // a new font empties it
  }
};

QTEST_MAIN(LabelCacheTest)
#include "label_cache_test.moc"

// Runs compared: their timelines stacked on one step-aligned time axis (compare_picture.h), and the
// compare table (CompareTableModel) with a chosen baseline and the largest differences highlighted.
// Owns the runs it loaded.
#pragma once

#include <QStringList>
#include <QWidget>
#include <memory>
#include <vector>

#include "storage/trace.h"
#include "ui/compare_picture.h"
#include "ui/compare_table_model.h"

class QComboBox;

namespace moescope::ui {

class CompareView : public QWidget {
  Q_OBJECT

 public:
  // Loads every run; throws storage::StorageError (or std::exception) when one will not load.
  explicit CompareView(const QStringList& paths, QWidget* parent = nullptr);
  // Runs already in memory (tests).
  explicit CompareView(std::vector<storage::Trace> traces, QWidget* parent = nullptr);

  QString title() const;
  CompareTableModel* model() const { return model_; }
  void setBaseline(size_t baseline);
  size_t runCount() const { return traces_.size(); }
  // The whole picture (timelines and table), width wide, for export.
  QSize pictureSize(int width) const;
  void paintPicture(QPainter& p, QSize size) const;

 private:
  void build();
  std::vector<const storage::Trace*> pointers() const;

  std::vector<std::unique_ptr<storage::Trace>> traces_;
  CompareTableModel* model_ = nullptr;
  QWidget* timelines_ = nullptr;
  QComboBox* baselineBox_ = nullptr;
};

}  // namespace moescope::ui

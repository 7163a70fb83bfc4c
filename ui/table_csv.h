// Any table model as CSV: the horizontal headers, then the display text of every cell, row by row;
// fields quoted (quotes doubled) where they hold a comma, quote or line break. Export "any table".
#pragma once

#include <QAbstractItemModel>
#include <QString>

namespace moescope::ui {

QString tableToCsv(const QAbstractItemModel& model);
// tableToCsv(model) written to path; false with the file's error otherwise.
bool exportTableCsv(const QAbstractItemModel& model, const QString& path, QString* error = nullptr);

}  // namespace moescope::ui

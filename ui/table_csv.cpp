#include "ui/table_csv.h"

#include <QFile>

namespace moescope::ui {
namespace {

QString field(QString s) {
  if (!s.contains(QLatin1Char(',')) && !s.contains(QLatin1Char('"')) && !s.contains(QLatin1Char('\n')) &&
      !s.contains(QLatin1Char('\r')))
    return s;
  s.replace(QStringLiteral("\""), QStringLiteral("\"\""));
  return QLatin1Char('"') + s + QLatin1Char('"');
}

}  // namespace

QString tableToCsv(const QAbstractItemModel& model) {
  QString out;
  const int columns = model.columnCount();
  for (int c = 0; c < columns; ++c) {
    if (c) out += QLatin1Char(',');
    out += field(model.headerData(c, Qt::Horizontal).toString());
  }
  out += QLatin1Char('\n');
  for (int r = 0; r < model.rowCount(); ++r) {
    for (int c = 0; c < columns; ++c) {
      if (c) out += QLatin1Char(',');
      out += field(model.index(r, c).data().toString());
    }
    out += QLatin1Char('\n');
  }
  return out;
}

bool exportTableCsv(const QAbstractItemModel& model, const QString& path, QString* error) {
  QFile file(path);
  if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate) || file.write(tableToCsv(model).toUtf8()) < 0) {
    if (error) *error = file.errorString();
    return false;
  }
  return true;
}

}  // namespace moescope::ui

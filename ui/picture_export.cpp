#include "ui/picture_export.h"

#include <QBuffer>
#include <QFile>
#include <QImageWriter>
#include <QSvgGenerator>

namespace moescope::ui {

QImage paintImage(QSize size, const PaintFunction& paint) {
  QImage image(size, QImage::Format_ARGB32_Premultiplied);
  image.fill(Qt::white);
  QPainter p(&image);
  paint(p);
  return image;
}

QByteArray paintSvg(QSize size, const PaintFunction& paint, const QString& title) {
  QBuffer buffer;
  buffer.open(QIODevice::WriteOnly);
  QSvgGenerator svg;
  svg.setOutputDevice(&buffer);
  svg.setSize(size);
  svg.setViewBox(QRect(QPoint(0, 0), size));
  svg.setResolution(96);
  svg.setTitle(title.isEmpty() ? QStringLiteral("moescope") : title);
  {
    QPainter p(&svg);
    paint(p);
  }
  return buffer.data();
}

bool isSvgPath(const QString& path) {
  return path.endsWith(QStringLiteral(".svg"), Qt::CaseInsensitive);
}

bool writePicture(const QString& path, QSize size, const PaintFunction& paint, QString* error,
                  const QString& title) {
  if (isSvgPath(path)) {
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate) ||
        file.write(paintSvg(size, paint, title)) < 0) {
      if (error) *error = file.errorString();
      return false;
    }
    return true;
  }
  QImageWriter writer(path);
  if (!writer.write(paintImage(size, paint))) {
    if (error) *error = writer.errorString();
    return false;
  }
  return true;
}

}  // namespace moescope::ui

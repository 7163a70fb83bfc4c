// Pictures of any view, to PNG (or another raster format) or SVG, from one paint function, so the
// screen, the GUI's exports and `moescope --render` draw the same thing. SVG goes through
// QSvgGenerator: each filled box becomes one <rect>, text stays text.
#pragma once

#include <QByteArray>
#include <QImage>
#include <QPainter>
#include <QSize>
#include <QString>
#include <functional>

namespace moescope::ui {

using PaintFunction = std::function<void(QPainter&)>;

// Needs a QGuiApplication (fonts); works on the offscreen platform.
QImage paintImage(QSize size, const PaintFunction& paint);
QByteArray paintSvg(QSize size, const PaintFunction& paint, const QString& title = {});
// Whether path names an SVG file (by its suffix, any case).
bool isSvgPath(const QString& path);
// SVG when path ends in .svg, else a raster image of the format its suffix names. On failure,
// returns false and says why in error.
bool writePicture(const QString& path, QSize size, const PaintFunction& paint, QString* error = nullptr,
                  const QString& title = {});

}  // namespace moescope::ui

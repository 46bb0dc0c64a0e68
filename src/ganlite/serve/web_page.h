// The page `ganlite serve` answers at `/`: drop an image, see input, teacher and student side by
// side with each one's latency and MACs. Plain HTML and JavaScript compiled into the binary
// (no npm, no files to install). `/?selftest=1` draws a sample image on a canvas and submits it
// through the same code path as a dropped file (tests drive it in headless Chromium); when both
// outputs are shown the body gets data-state="done" and #result holds the figures as JSON.
#pragma once
#include <string>

namespace ganlite::serve {

const std::string& comparison_page_html();

}  // namespace ganlite::serve

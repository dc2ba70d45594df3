"""Screenshots of the Attributions page with its trust panel, in a real Chromium, for
docs/: at 1440x900 (a laptop) and 390x844 (a phone), and a check that nothing of the
trust panel is cut: no legend entry, axis title or control label truncated.

    python scripts/screenshots.py            # writes docs/screenshots/*.png
    python scripts/screenshots.py --out DIR  # elsewhere

It starts ``streamlit run app.py`` on a free loopback port (tests/serving.py), opens
``/Attributions``, asks for the faithfulness check when it does not run by itself,
waits for the badge and the curves, and saves:

* ``attributions-1440.png``: the whole page at 1440 px wide;
* ``attributions-1440-trust.png``: the 1440x900 window scrolled to the trust panel;
* ``attributions-390-first-load.png``: the phone's first view (the sidebar collapsed);
* ``attributions-390.png``: the heatmap and its trust panel at 390 px wide.

:func:`cut_texts` is the truncation check (the browser test uses it too): every text
of a Plotly figure (legend entries, axis titles, tick labels) must lie inside its
figure, and no Streamlit label may be shortened with an ellipsis.  The script exits
with status 1 when something is cut.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from serving import chromium, settle, streamlit_server  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}

#: in the page: texts of Plotly figures outside their figure, and Streamlit labels or
#: markdown cut by an ellipsis (text-overflow) -- what a person cannot read
_CUT_JS = """
(root) => {
  const out = [];
  const scope = root ? document.querySelector(root) : document;
  if (!scope) return ['no element ' + root];
  for (const plot of scope.querySelectorAll('.js-plotly-plot')) {
    const box = plot.getBoundingClientRect();
    if (box.width === 0) continue;
    const texts = plot.querySelectorAll(
      '.legendtext, .g-xtitle text, .g-ytitle text, .xtick text, .ytick text, .gtitle');
    for (const t of texts) {
      const r = t.getBoundingClientRect();
      if (!t.textContent.trim() || r.width === 0) continue;
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 ||
          r.bottom > box.bottom + 1) {
        out.push('figure text outside its figure: ' + t.textContent.trim());
      }
    }
  }
  const labels = scope.querySelectorAll(
    '[data-testid=stWidgetLabel] p, [data-testid=stMarkdownContainer] p, span.stMarkdownBadge');
  for (const el of labels) {
    const style = getComputedStyle(el);
    if (el.offsetWidth > 0 && el.scrollWidth > el.clientWidth + 1 &&
        (style.textOverflow === 'ellipsis' || style.overflow === 'hidden')) {
      out.push('label cut: ' + el.textContent.trim());
    }
  }
  return out;
}
"""


def cut_texts(page, root: str = "[data-testid=stMain]") -> List[str]:
    """Texts of the page (under the CSS selector ``root``) that a person cannot read in
    full: Plotly texts outside their figure, labels ending in an ellipsis."""
    return list(page.evaluate(_CUT_JS, root))


def open_attributions(page, url: str) -> None:
    """Attributions with the trust panel's badge and curves drawn (asking for the check
    when it does not run by itself)."""
    page.goto(f"{url}/Attributions")
    settle(page)
    page.get_by_text("How far to trust this map").first.wait_for(timeout=180_000)
    settle(page)
    check = page.get_by_role("button", name="Check faithfulness")
    if check.count():
        check.first.click()
        settle(page)
    page.locator("[class*=st-key-trust_curves] .js-plotly-plot, .js-plotly-plot .legendtext").first.wait_for(
        timeout=240_000)
    settle(page)
    time.sleep(1.0)  # Plotly lays out after the element appears


def whole_page(page, path: Optional[Path], width: int) -> None:
    """The whole page at ``width``: Streamlit scrolls inside its main section, so the
    window is stretched to the content's height first."""
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=stMain]');"
        " return m ? m.scrollHeight : document.body.scrollHeight }")
    page.set_viewport_size({"width": width, "height": max(800, min(int(height) + 40, 6000))})
    time.sleep(1.0)
    if path is not None:
        page.screenshot(path=str(path))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright import sync_api

    problems = []
    with streamlit_server("screenshots-server.log") as url, chromium(sync_api) as browser:
        page = browser.new_page(viewport=WIDE)
        open_attributions(page, url)
        problems += [f"1440: {p}" for p in cut_texts(page)]
        trust = page.get_by_text("How far to trust this map").first
        trust.evaluate("e => e.scrollIntoView({block: 'start'})")  # the panel at the top
        time.sleep(0.5)
        page.screenshot(path=str(args.out / "attributions-1440-trust.png"))
        whole_page(page, args.out / "attributions-1440.png", WIDE["width"])
        page.close()

        phone = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
        open_attributions(phone, url)
        phone.evaluate("() => document.querySelector('[data-testid=stMain]').scrollTo(0, 0)")
        time.sleep(0.5)
        phone.screenshot(path=str(args.out / "attributions-390-first-load.png"))
        problems += [f"390: {p}" for p in cut_texts(phone)]
        whole_page(phone, None, PHONE["width"])
        # the heatmap and its trust panel (the phone's page is long: the pickers come first)
        top = phone.evaluate("() => document.querySelector('.st-key-overlay').getBoundingClientRect().top")
        end = phone.evaluate("() => document.querySelector('.st-key-w_mark_region')"
                             ".getBoundingClientRect().bottom")
        phone.screenshot(path=str(args.out / "attributions-390.png"),
                         clip={"x": 0, "y": max(0, top - 70), "width": PHONE["width"],
                               "height": end - top + 90})
        phone.close()
    for p in problems:
        print(p)
    print(f"screenshots in {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

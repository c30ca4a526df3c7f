// A backfill's calendar: one cell per date, one <canvas> per year (a century is 100 canvases
// and 36,500 rectangles, drawn in milliseconds, where 36,500 DOM nodes would crawl). Each
// status has a colour AND a mark (cross, dot, ring, slash, outline), named in the legend with
// its count, so nothing is told by colour alone. Keyboard: Tab to a year, arrows move a day
// (up/down) or a week (left/right), PageUp/PageDown a year, Home/End the range's ends; the
// selected date's details go to an aria-live panel.

import { fmtNumber, h } from "./dom.js";

export const STATUSES = [
  { status: "COMPLETED", label: "Done", fill: "#1a7f37", mark: "none" },
  { status: "FAILED", label: "Failed", fill: "#cf222e", mark: "cross" },
  { status: "RUNNING", label: "Running", fill: "#0969da", mark: "dot" },
  { status: "QUEUED", label: "Queued", fill: "#ddf4ff", mark: "ring", edge: "#0969da" },
  { status: "CREATED", label: "Waiting", fill: "#ffffff", mark: "outline", edge: "#57606a" },
  { status: "CANCELLED", label: "Cancelled", fill: "#6e7781", mark: "slash" },
];
const STYLE = Object.fromEntries(STATUSES.map((s) => [s.status, s]));
const CELL = 12;
const GAP = 2;
const STEP = CELL + GAP;
const LEFT = 28; // weekday labels
const TOP = 16; // month labels
const DAY = 86400000;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const toDay = (iso) => Date.parse(`${iso}T00:00:00Z`) / DAY; // days since 1970-01-01
const toIso = (day) => new Date(day * DAY).toISOString().slice(0, 10);
const weekday = (day) => (new Date(day * DAY).getUTCDay() + 6) % 7; // Monday 0

/** Draw one cell of `status` at (x, y): its fill, then its mark. */
export function drawCell(ctx, x, y, status, selected = false) {
  const style = STYLE[status] || STYLE.CREATED;
  ctx.fillStyle = style.fill;
  ctx.fillRect(x, y, CELL, CELL);
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = "#ffffff";
  ctx.fillStyle = "#ffffff";
  const c = CELL / 2;
  if (style.mark === "cross") {
    ctx.beginPath();
    ctx.moveTo(x + 3, y + 3); ctx.lineTo(x + CELL - 3, y + CELL - 3);
    ctx.moveTo(x + CELL - 3, y + 3); ctx.lineTo(x + 3, y + CELL - 3);
    ctx.stroke();
  } else if (style.mark === "dot") {
    ctx.beginPath(); ctx.arc(x + c, y + c, 2.5, 0, 2 * Math.PI); ctx.fill();
  } else if (style.mark === "slash") {
    ctx.beginPath(); ctx.moveTo(x + 2, y + CELL - 2); ctx.lineTo(x + CELL - 2, y + 2); ctx.stroke();
  } else if (style.mark === "ring" || style.mark === "outline") {
    ctx.strokeStyle = style.edge;
    ctx.lineWidth = 1;
    ctx.strokeRect(x + 0.5, y + 0.5, CELL - 1, CELL - 1);
    if (style.mark === "ring") {
      ctx.fillStyle = style.edge;
      ctx.beginPath(); ctx.arc(x + c, y + c, 1.5, 0, 2 * Math.PI); ctx.fill();
    }
  }
  if (selected) {
    ctx.strokeStyle = "#000000";
    ctx.lineWidth = 2;
    ctx.strokeRect(x - 1, y - 1, CELL + 2, CELL + 2);
  }
}

/** A legend swatch: the cell as the calendar draws it, on a canvas of its own. */
function swatch(status) {
  const canvas = h("canvas", { width: CELL + 4, height: CELL + 4, "aria-hidden": "true" });
  drawCell(canvas.getContext("2d"), 2, 2, status);
  return canvas;
}

class Year {
  constructor(year, first, last, calendar) {
    this.year = year;
    this.first = Math.max(first, toDay(`${year}-01-01`));
    this.last = Math.min(last, toDay(`${year}-12-31`));
    this.monday = this.first - weekday(this.first); // column 0: the week of its first date
    const columns = Math.floor((this.last - this.monday) / 7) + 1;
    this.width = LEFT + Math.max(columns, 3) * STEP; // room for a month's name, however short
    this.height = TOP + 7 * STEP;
    const ratio = window.devicePixelRatio || 1;
    this.canvas = h("canvas", {
      width: Math.ceil(this.width * ratio), height: Math.ceil(this.height * ratio),
      tabindex: "0", role: "img", class: "year-canvas", dataset: { year: String(year) },
    });
    this.canvas.style.width = `${this.width}px`;
    this.canvas.style.height = `${this.height}px`;
    this.ctx = this.canvas.getContext("2d");
    this.ctx.scale(ratio, ratio);
    this.element = h("div", { class: "year" }, h("h3", { text: String(year) }), this.canvas);
    calendar.listen(this);
  }

  position(day) {
    const index = day - this.monday;
    return [LEFT + Math.floor(index / 7) * STEP, TOP + (index % 7) * STEP];
  }

  dayAt(x, y) {
    const column = Math.floor((x - LEFT) / STEP);
    const row = Math.floor((y - TOP) / STEP);
    if (column < 0 || row < 0 || row > 6) return null;
    const day = this.monday + column * 7 + row;
    return day >= this.first && day <= this.last ? day : null;
  }

  draw(statusOf, selected) {
    const ctx = this.ctx;
    ctx.clearRect(0, 0, this.width, this.height);
    ctx.fillStyle = "#24292f";
    ctx.font = "10px system-ui, sans-serif";
    let labelled = 0;
    for (let month = 0; month < 12; month += 1) {
      const day = toDay(`${this.year}-${String(month + 1).padStart(2, "0")}-01`);
      const next = toDay(month === 11 ? `${this.year + 1}-01-01` : `${this.year}-${String(month + 2).padStart(2, "0")}-01`);
      const shown = Math.min(next - 1, this.last) - Math.max(day, this.first) + 1;
      if (shown < 14) continue; // too little of the month in range for its name to fit
      ctx.fillText(MONTHS[month], this.position(Math.max(day, this.first))[0], 10);
      labelled += 1;
    }
    if (!labelled) ctx.fillText(MONTHS[Number(toIso(this.first).slice(5, 7)) - 1], LEFT, 10);
    ["Mon", "", "Wed", "", "Fri", "", ""].forEach((name, row) => {
      if (name) ctx.fillText(name, 0, TOP + row * STEP + 10);
    });
    for (let day = this.first; day <= this.last; day += 1) {
      const [x, y] = this.position(day);
      drawCell(ctx, x, y, statusOf(day), day === selected);
    }
  }

  redrawCell(day, status, selected) {
    const [x, y] = this.position(day);
    this.ctx.clearRect(x - 2, y - 2, CELL + 4, CELL + 4);
    drawCell(this.ctx, x, y, status, selected);
  }
}

export class Calendar {
  /** range: {start, end} ISO dates; onSelect(entry or {data_date}) when the selection moves. */
  constructor(range, { onSelect }) {
    this.first = toDay(range.start);
    this.last = toDay(range.end);
    this.onSelect = onSelect;
    this.status = new Uint8Array(this.last - this.first + 1); // index into STATUSES, by day
    this.status.fill(STATUSES.findIndex((s) => s.status === "CREATED"));
    this.entries = new Map(); // day -> the API's date entry
    this.selected = null;
    this.tip = h("div", { class: "tip", "aria-hidden": "true", hidden: true });
    this.counts = new Map();
    this.legend = h("ul", { class: "legend", "aria-label": "Legend: what each cell means" });
    this.years = [];
    const startYear = Number(range.start.slice(0, 4));
    const endYear = Number(range.end.slice(0, 4));
    for (let year = startYear; year <= endYear; year += 1) {
      this.years.push(new Year(year, this.first, this.last, this));
    }
    this.grid = h("div", { class: "years" }, this.years.map((y) => y.element));
    this.element = h("div", { class: "calendar" }, this.legend, this.grid, this.tip);
  }

  statusName(day) {
    return STATUSES[this.status[day - this.first]].status;
  }

  /** Take the API's date entries (all of them, or the ones that changed) and redraw. */
  update(entries) {
    performance.mark("calendar-draw-start");
    for (const entry of entries) {
      const day = toDay(entry.data_date);
      if (day < this.first || day > this.last) continue;
      this.entries.set(day, entry);
      this.status[day - this.first] = Math.max(0, STATUSES.findIndex((s) => s.status === entry.status));
    }
    const statusOf = (day) => this.statusName(day);
    for (const year of this.years) year.draw(statusOf, this.selected);
    this.drawLegend();
    performance.mark("calendar-draw-end");
    performance.measure("calendar-draw", "calendar-draw-start", "calendar-draw-end");
    if (this.selected !== null) this.onSelect(this.describe(this.selected));
  }

  drawLegend() {
    const counts = new Array(STATUSES.length).fill(0);
    for (const index of this.status) counts[index] += 1;
    this.legend.replaceChildren(
      ...STATUSES.map((s, i) => h(
        "li",
        { dataset: { status: s.status } },
        swatch(s.status),
        h("span", { class: "legend-label", text: `${s.label} (${s.status})` }),
        h("span", { class: "legend-count", text: fmtNumber(counts[i]) }),
      )),
    );
    for (const year of this.years) {
      const inYear = new Array(STATUSES.length).fill(0);
      for (let day = year.first; day <= year.last; day += 1) inYear[this.status[day - this.first]] += 1;
      const parts = STATUSES.map((s, i) => (inYear[i] ? `${inYear[i]} ${s.label.toLowerCase()}` : ""));
      year.canvas.setAttribute(
        "aria-label",
        `${year.year}: ${parts.filter(Boolean).join(", ")}. Arrow keys move between dates.`,
      );
    }
  }

  describe(day) {
    return this.entries.get(day) || { data_date: toIso(day), status: this.statusName(day) };
  }

  yearOf(day) {
    return this.years.find((y) => day >= y.first && day <= y.last);
  }

  select(day, { focus = false } = {}) {
    const clamped = Math.min(this.last, Math.max(this.first, day));
    const previous = this.selected;
    this.selected = clamped;
    if (previous !== null) this.yearOf(previous).redrawCell(previous, this.statusName(previous), false);
    const year = this.yearOf(clamped);
    year.redrawCell(clamped, this.statusName(clamped), true);
    if (focus && document.activeElement !== year.canvas) year.canvas.focus();
    this.onSelect(this.describe(clamped));
  }

  selectDate(iso, options) {
    this.select(toDay(iso), options);
  }

  listen(year) {
    const canvas = year.canvas;
    canvas.addEventListener("focus", () => {
      if (this.selected === null || this.yearOf(this.selected) !== year) this.select(year.first);
    });
    canvas.addEventListener("keydown", (event) => this.key(event));
    canvas.addEventListener("click", (event) => {
      const day = year.dayAt(event.offsetX, event.offsetY);
      if (day !== null) this.select(day, { focus: true });
    });
    canvas.addEventListener("mousemove", (event) => this.hover(year, event));
    canvas.addEventListener("mouseleave", () => { this.tip.hidden = true; });
  }

  key(event) {
    const moves = {
      ArrowUp: -1, ArrowDown: 1, ArrowLeft: -7, ArrowRight: 7, PageUp: -365, PageDown: 365,
    };
    const from = this.selected ?? this.first;
    let to = null;
    if (event.key in moves) to = from + moves[event.key];
    else if (event.key === "Home") to = this.first;
    else if (event.key === "End") to = this.last;
    if (to === null) return;
    event.preventDefault();
    this.select(to, { focus: true });
  }

  hover(year, event) {
    const day = year.dayAt(event.offsetX, event.offsetY);
    if (day === null) {
      this.tip.hidden = true;
      return;
    }
    const entry = this.describe(day);
    const label = STYLE[entry.status]?.label || entry.status;
    const attempts = entry.attempts ? `, ${entry.attempts} attempt${entry.attempts === 1 ? "" : "s"}` : "";
    this.tip.textContent = `${entry.data_date}: ${label}${attempts}${entry.message ? ` — ${entry.message}` : ""}`;
    this.tip.hidden = false;
    const box = this.element.getBoundingClientRect();
    const cell = event.target.getBoundingClientRect();
    this.tip.style.left = `${cell.left - box.left + event.offsetX + 12}px`;
    this.tip.style.top = `${cell.top - box.top + event.offsetY + 12}px`;
  }
}

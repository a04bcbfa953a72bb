// A drawing pad: a square canvas taking Pointer Events (mouse, touch, pen) with pointer capture, or
// the keyboard (arrow keys move the pen, Space or Enter puts it down and lifts it). Keeps the
// drawing as vector strokes (see strokes.js), re-rendered at the canvas' size.
import { drawStrokes } from "./strokes.js";

const KEY_STEP = 0.025; // keyboard pen movement per arrow press, as a fraction of the side

export class Pad {
  // canvas: the <canvas>; onChange(pad, why): a stroke was finished ("stroke"), undone ("undo") or the
  // pad cleared ("clear"); setStrokes() does not call it
  constructor(canvas, { onChange = () => {} } = {}) {
    this.canvas = canvas;
    this.onChange = onChange;
    this.strokes = [];
    this.current = null;
    this.pointerId = null;
    this.t0 = null;
    this.cursor = null; // keyboard pen position [x, y], shown while the canvas has focus
    this.lastPenUp = 0;
    this.ctx = canvas.getContext("2d");
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", (e) => this.up(e));
    canvas.addEventListener("lostpointercapture", (e) => this.up(e));
    canvas.addEventListener("keydown", (e) => this.key(e));
    canvas.addEventListener("focus", () => { this.cursor = this.cursor || [0.5, 0.5]; this.render(); });
    canvas.addEventListener("blur", () => { if (this.current) this.finish(); this.render(); });
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(canvas);
    this.resize();
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const side = Math.max(1, Math.round(this.canvas.clientWidth * ratio)); // the content box: no border
    if (this.canvas.width !== side || this.canvas.height !== side) {
      this.canvas.width = side;
      this.canvas.height = side;
    }
    this.render();
  }

  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    const { clientLeft, clientTop, clientWidth, clientHeight } = this.canvas; // inside the border
    const now = event.timeStamp;
    if (this.t0 === null) this.t0 = now;
    return [(event.clientX - rect.left - clientLeft) / clientWidth, (event.clientY - rect.top - clientTop) / clientHeight,
      Math.round(now - this.t0)];
  }

  down(event) {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    if (this.current) this.finish();
    event.preventDefault();
    this.canvas.focus({ preventScroll: true });
    this.canvas.setPointerCapture(event.pointerId);
    this.pointerId = event.pointerId;
    if (!this.strokes.length) this.t0 = null;
    this.current = [this.point(event)];
    this.strokes.push(this.current);
    this.render();
  }

  move(event) {
    if (!this.current || event.pointerId !== this.pointerId) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) this.current.push(this.point(e));
    this.render();
  }

  up(event) {
    if (!this.current || event.pointerId !== this.pointerId) return;
    if (event.type === "pointerup") this.current.push(this.point(event));
    this.pointerId = null;
    this.finish();
  }

  finish() {
    this.current = null;
    this.lastPenUp = performance.now();
    this.render();
    this.onChange(this, "stroke");
  }

  key(event) {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (moves[event.key]) {
      event.preventDefault();
      const [dx, dy] = moves[event.key];
      const step = event.shiftKey ? KEY_STEP * 4 : KEY_STEP;
      const [x, y] = this.cursor || [0.5, 0.5];
      this.cursor = [Math.min(1, Math.max(0, x + dx * step)), Math.min(1, Math.max(0, y + dy * step))];
      if (this.current) {
        if (this.t0 === null) this.t0 = event.timeStamp;
        this.current.push([...this.cursor, Math.round(event.timeStamp - this.t0)]);
      }
      this.render();
    } else if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      if (this.current) {
        this.finish();
      } else {
        this.cursor = this.cursor || [0.5, 0.5];
        if (!this.strokes.length) this.t0 = event.timeStamp;
        this.current = [[...this.cursor, Math.round(event.timeStamp - this.t0)]];
        this.strokes.push(this.current);
        this.render();
      }
    } else if (event.key === "Escape" && this.current) {
      event.preventDefault();
      this.finish();
    } else if ((event.key === "z" || event.key === "Z") && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      this.undo();
    } else if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      this.clear();
    }
  }

  undo() {
    if (this.current) this.current = null;
    if (!this.strokes.length) return;
    this.strokes.pop();
    this.render();
    this.onChange(this, "undo");
  }

  clear() {
    this.current = null;
    if (!this.strokes.length) return;
    this.strokes = [];
    this.render();
    this.onChange(this, "clear");
  }

  setStrokes(strokes) {
    this.current = null;
    this.strokes = strokes.map((s) => s.map((p) => p.slice()));
    this.render();
  }

  isEmpty() {
    return this.strokes.length === 0;
  }

  render() {
    const { ctx, canvas } = this;
    const side = canvas.width;
    ctx.clearRect(0, 0, side, side);
    const ink = getComputedStyle(canvas).getPropertyValue("--ink").trim() || "#111";
    drawStrokes(ctx, this.strokes, side, ink);
    if (this.cursor && document.activeElement === canvas) {
      const [x, y] = this.cursor;
      ctx.save();
      ctx.strokeStyle = getComputedStyle(canvas).getPropertyValue("--cursor").trim() || "#d33";
      ctx.lineWidth = Math.max(1, side / 150);
      const r = side * 0.03;
      ctx.beginPath();
      ctx.moveTo(x * side - r, y * side);
      ctx.lineTo(x * side + r, y * side);
      ctx.moveTo(x * side, y * side - r);
      ctx.lineTo(x * side, y * side + r);
      ctx.stroke();
      ctx.restore();
    }
  }
}

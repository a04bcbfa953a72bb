// Cancelled: the error of an adaptation stopped early (replaced by a newer request, or Stop).
// Thrown by engine.js in the worker and by adapters.js on the page; one class, so one name for it.
export class Cancelled extends Error {
  constructor() {
    super("adaptation cancelled");
    this.name = "Cancelled";
  }
}

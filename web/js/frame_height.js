// The height messages a framed page sends its parent, so that the parent can size the iframe: the demo's
// embed (embed.js) and the parts of /learn (learn/shell.js). No page configuration needed here.

// {sentinel: "amp", type: "embed-size", height} to the parent now and on every change of height.
export function postFrameHeight() {
  let last = 0;
  const post = () => {
    const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height !== last) {
      last = height;
      window.parent.postMessage({ sentinel: "amp", type: "embed-size", height }, "*");
    }
  };
  new ResizeObserver(post).observe(document.documentElement);
  post();
}

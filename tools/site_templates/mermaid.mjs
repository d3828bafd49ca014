// nbconvert's mermaid renderer imports an ES module; mermaid's one-file build
// (mermaid.min.js, beside this file) is a classic script that sets globalThis.mermaid.
await new Promise((resolve, reject) => {
  const script = document.createElement("script");
  script.src = new URL("mermaid.min.js", import.meta.url);
  script.onload = resolve;
  script.onerror = () => reject(new Error(`cannot load ${script.src}`));
  document.head.append(script);
});
export default globalThis.mermaid;

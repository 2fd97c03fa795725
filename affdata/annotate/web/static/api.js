// The studio's calls to its server: JSON in and out, the CSRF token on every write.
let csrf = "";

export function setCsrf(token) { csrf = token; }

export async function api(method, url, body, opts = {}) {
  const init = { method, credentials: "same-origin", headers: {}, keepalive: !!opts.keepalive };
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    init.headers["X-CSRF-Token"] = csrf;
    init.body = JSON.stringify(body ?? {});
  }
  const r = await fetch(url, init);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const err = new Error(data.error || `${r.status} ${r.statusText}`);
    err.status = r.status;
    throw err;
  }
  return data;
}

export async function me() {
  try {
    const m = await api("GET", "/api/me");
    setCsrf(m.csrf);
    return m;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.addEventListener("click", v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

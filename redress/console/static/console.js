// The console's one script: passkey ceremonies, countdowns, and live updates of the case page.
// Everything else is plain HTML forms. No inline script anywhere (the Content-Security-Policy forbids it).
"use strict";

const csrf = () => document.body.dataset.csrf;

function b64urlToBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function bytesToB64url(buffer) {
  let text = "";
  for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function requestOptions(json) {
  if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  return Object.assign({}, json, {
    challenge: b64urlToBytes(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => Object.assign({}, c, { id: b64urlToBytes(c.id) })),
  });
}

function creationOptions(json) {
  if (window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON) {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return Object.assign({}, json, {
    challenge: b64urlToBytes(json.challenge),
    user: Object.assign({}, json.user, { id: b64urlToBytes(json.user.id) }),
    excludeCredentials: (json.excludeCredentials || []).map((c) => Object.assign({}, c, { id: b64urlToBytes(c.id) })),
  });
}

function credentialJSON(credential) {
  if (credential.toJSON) return credential.toJSON();
  const r = credential.response;
  const out = { id: credential.id, rawId: bytesToB64url(credential.rawId), type: credential.type, response: {} };
  out.response.clientDataJSON = bytesToB64url(r.clientDataJSON);
  if (r.authenticatorData) {
    out.response.authenticatorData = bytesToB64url(r.authenticatorData);
    out.response.signature = bytesToB64url(r.signature);
    if (r.userHandle) out.response.userHandle = bytesToB64url(r.userHandle);
  } else {
    out.response.attestationObject = bytesToB64url(r.attestationObject);
    out.response.transports = r.getTransports ? r.getTransports() : [];
  }
  out.clientExtensionResults = credential.getClientExtensionResults();
  return out;
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  let answer = {};
  try { answer = await response.json(); } catch (e) { answer = { refused: "the console answered " + response.status }; }
  if (!response.ok || answer.ok === false) throw new Error(answer.refused || "refused (" + response.status + ")");
  return answer;
}

function show(message, bad) {
  const box = document.getElementById("problem");
  box.textContent = message;
  box.classList.toggle("bad", !!bad);
  box.classList.remove("hidden");
}

async function signIn(person) {
  const start = await post("/signin/options", { person });
  const credential = await navigator.credentials.get({ publicKey: requestOptions(start.publicKey) });
  const done = await post("/signin/finish", { ceremony: start.ceremony, credential: credentialJSON(credential) });
  window.location.assign(done.next);
}

async function register(person) {
  const start = await post("/passkeys/options", { person });
  const credential = await navigator.credentials.create({ publicKey: creationOptions(start.publicKey) });
  const done = await post("/passkeys/finish", { ceremony: start.ceremony, credential: credentialJSON(credential) });
  if (done.registered) {
    window.location.reload();
    return;
  }
  document.getElementById("entry-yaml").textContent = person + ": passkeys: [" + done.entry + "]";
  document.getElementById("entry-command").textContent = done.command;
  document.getElementById("entry").classList.remove("hidden");
}

// A decision that moves money: the console sends the terms' hash as the challenge; the passkey signs it.
async function sign(baseUrl, body) {
  show(document.documentElement.lang.startsWith("zh") ? "等待通行密钥..." : "Waiting for your passkey...", false);
  const start = await post(baseUrl + "/options", body);
  const credential = await navigator.credentials.get({ publicKey: requestOptions(start.publicKey) });
  const done = await post(baseUrl + "/finish", { ceremony: start.ceremony, credential: credentialJSON(credential) });
  show(done.message, false);
  await refreshLive(true);
}

function needsSignature(form) {
  if (form.dataset.alwaysSign) return true;
  if (!form.dataset.passkey) return false;
  const kind = form.elements.kind.value;
  if (JSON.parse(form.dataset.free || "[]").includes(kind)) return false;
  const limit = JSON.parse(form.dataset.auto || "{}")[form.elements.currency.value];
  const amount = parseFloat(form.elements.amount.value || "0");
  return limit === undefined || !(amount > 0) || amount > parseFloat(limit);
}

function guarded(action) {
  return (event) => {
    event.preventDefault();
    action(event).catch((error) => show(error.message || String(error), true));
  };
}

document.addEventListener("click", (event) => {
  const target = event.target.closest("button");
  if (!target) return;
  const named = () => document.querySelector("#signin-by-name input[name=person]").value.trim();
  if (target.dataset.signinForm) guarded(() => signIn(named()))(event);
  else if (target.dataset.registerForm) guarded(() => register(named()))(event);
  else if (target.dataset.signin) guarded(() => signIn(target.dataset.signin))(event);
  else if (target.dataset.register) guarded(() => register(target.dataset.register))(event);
  else if (target.dataset.sign) {
    guarded(() => sign(target.dataset.url, { action: target.dataset.sign, proposal_id: target.dataset.proposal }))(event);
  } else if (target.dataset.offerKind) {
    event.preventDefault();
    const form = document.getElementById("propose");
    form.elements.kind.value = target.dataset.offerKind;
    form.elements.amount.value = target.dataset.offerAmount;
    form.elements.currency.value = target.dataset.offerCurrency;
    form.elements.reason.value = "offer: " + target.dataset.offerRule;
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.id !== "propose" || !needsSignature(form)) return;
  guarded(() =>
    sign(form.dataset.signUrl, {
      action: "propose",
      kind: form.elements.kind.value,
      amount: form.elements.amount.value,
      currency: form.elements.currency.value,
      reason: form.elements.reason.value,
    })
  )(event);
});

// Evidence: the chosen file's SHA-256 is computed here and put in the form; the file has no name in the form,
// so its bytes are never sent (the case keeps where it is and its digest).
document.addEventListener("change", async (event) => {
  const input = event.target;
  if (!input.dataset || !input.dataset.digestInto || !input.files || !input.files.length) return;
  const digest = await crypto.subtle.digest("SHA-256", await input.files[0].arrayBuffer());
  const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  input.form.elements[input.dataset.digestInto].value = hex;
});

// Countdowns: every [data-due] shows the time left (or overdue), from the browser's clock, each second.
function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-due]")) {
    if (el.dataset.paused) { el.textContent = "⏸ " + (el.dataset.pausedText || "paused"); continue; }
    const left = Math.round((Date.parse(el.dataset.due) - now) / 1000);
    const s = Math.abs(left);
    const text = Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m" +
      String(s % 60).padStart(2, "0") + "s";
    el.textContent = left >= 0 ? text : "-" + text;
    el.classList.toggle("overdue", left < 0);
    el.dataset.secondsLeft = String(left);
  }
}

// Live case page: poll a digest; when it changes (here or elsewhere: the CLI, a timer), reload the live part.
async function refreshLive(force) {
  const live = document.getElementById("live");
  if (!live) return;
  const source = live.dataset.source;
  if (!force) {
    const answer = await fetch(source + "/version", { credentials: "same-origin" });
    if (!answer.ok) return;
    const { version } = await answer.json();
    if (version === live.dataset.version) return;
  }
  const active = document.activeElement && live.contains(document.activeElement) && document.activeElement.value;
  if (active && !force) return; // someone is typing in a form: do not wipe it
  const part = await fetch(source + "?part=live", { credentials: "same-origin" });
  if (!part.ok) return;
  const html = await part.text();
  const fresh = new DOMParser().parseFromString(html, "text/html");
  live.replaceChildren(...fresh.body.childNodes);
  const again = await fetch(source + "/version", { credentials: "same-origin" });
  if (again.ok) live.dataset.version = (await again.json()).version;
  tick();
}

tick();
setInterval(tick, 1000);
if (document.getElementById("live")) setInterval(() => refreshLive(false).catch(() => {}), 2000);

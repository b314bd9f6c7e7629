// Public status page of the Power Exchange Hub: plain JavaScript, no build step.
// The lookup name of a status document is derived in the browser exactly as the
// administration side derives it (rules/query_password.py): PBKDF2-HMAC-SHA256 over the
// query password (hyphens and spaces removed, upper case), salted with the prefix from
// config.json and the case number; an 8-character password of the first scheme uses that
// scheme's prefix and iteration count (config.json "legacy"). Nothing
// is ever inserted as HTML: every value goes in through textContent.
"use strict";

// Labels of status and result codes: config.json "labels" (rules/status_labels.py).
let STATUS_LABELS = {}, RESULT_LABELS = {};

// Published strings are HTML-escaped plain text: decode the character references (an inert
// parse, nothing runs) and show the result as text, never as markup.
const DECODER = new DOMParser();
function plain(value) {
  if (value == null) return "";
  const parsed = DECODER.parseFromString("<!doctype html><body>" + String(value), "text/html");
  return parsed.body.textContent;
}

function text(id, value) { document.getElementById(id).textContent = plain(value); }

// Times are published as ISO 8601 with their offset; an applicant reads them as dates and
// times of the agency (China Standard Time), e.g. 2026年11月12日 09:40. A date alone
// (YYYY-MM-DD) is shown as the date; anything unreadable is shown as published.
const AGENCY_TIME = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "numeric", day: "numeric",
  hour: "2-digit", minute: "2-digit", hourCycle: "h23",
});
function localTime(value) {
  if (value == null || value === "") return "";
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(value));
  if (day) return Number(day[1]) + "年" + Number(day[2]) + "月" + Number(day[3]) + "日";
  const moment = new Date(String(value));
  if (Number.isNaN(moment.getTime())) return String(value);
  const part = Object.fromEntries(AGENCY_TIME.formatToParts(moment).map((p) => [p.type, p.value]));
  return part.year + "年" + part.month + "月" + part.day + "日 " + part.hour + ":" + part.minute;
}

// WebCrypto (crypto.subtle) exists only in a secure context: https, or http on localhost.
const CAN_LOOK_UP = window.isSecureContext && !!(window.crypto && window.crypto.subtle);
const INSECURE_MESSAGE = "本页面需通过 HTTPS 或在本机 (localhost) 打开才能查询：浏览器只在安全连接下提供解密所需的功能。";

async function fetchJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) return null;
  return response.json();
}

// One derivation of 64 bytes: the first 32 spell the document's lookup name, the next 32
// are the AES-256-GCM key its records are sealed under (rules/query_password.py,
// rules/status_seal.py).
async function statusKeys(key, password, query) {
  const encoder = new TextEncoder();
  const plain = password.replace(/[ \t-]/g, "").toUpperCase();
  const scheme = query.legacy && plain.length === query.legacy.password_length ? query.legacy : query;
  const material = await crypto.subtle.importKey(
    "raw", encoder.encode(plain), "PBKDF2", false, ["deriveBits"]);
  const bits = new Uint8Array(await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", iterations: scheme.iterations,
      salt: encoder.encode(scheme.salt_prefix + key.trim().toUpperCase()) },
    material, (query.length_bytes + query.sealing.key_bytes) * 8));
  const letters = "abcdefghijklmnop";
  const name = Array.from(bits.slice(0, query.length_bytes), (b) => letters[b >> 4] + letters[b & 15]).join("");
  const offset = query.sealing.key_offset_bytes;
  const sealKey = await crypto.subtle.importKey(
    "raw", bits.slice(offset, offset + query.sealing.key_bytes), "AES-GCM", false, ["decrypt"]);
  return { name, sealKey };
}

// nonce = purpose (4 bytes) || event id (8 bytes, big-endian); aad = "<name>|<event id>|<purpose>"
async function opened(sealKey, name, eventId, purpose, sealed) {
  const nonce = new Uint8Array(12);
  nonce.set(new TextEncoder().encode(purpose));
  new DataView(nonce.buffer).setBigUint64(4, BigInt(eventId));
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: nonce, additionalData: new TextEncoder().encode(name + "|" + eventId + "|" + purpose) },
    sealKey, base64Bytes(sealed));
  return new TextDecoder().decode(plain);
}

// The document an applicant sees: the opened records (and those of a document published
// before the store), in order, with the case's latest names, status and result; the same
// as connectors/status_store.py document_of.
async function openDocument(found, keys) {
  const legacy = found.legacy || { events: [] };
  const byId = new Map((legacy.events || []).map((e) => [e.event_id, e]));
  for (const event of found.events) {
    byId.set(event.event_id, JSON.parse(await opened(keys.sealKey, keys.name, event.event_id, "evt0", event.sealed)));
  }
  const audit = Object.assign({}, legacy.audit || {});
  for (const leaf of found.audit) {
    const entry = leaf.entry != null ? leaf.entry : await opened(keys.sealKey, keys.name, leaf.event_id, "aud0", leaf.sealed);
    for (const eventId of leafEventIds(entry, leaf.event_id)) audit[String(eventId)] = { seq: leaf.seq, entry };
  }
  const events = Array.from(byId.values()).sort((a, b) => a.event_id - b.event_id);
  const doc = { events, audit };
  const latest = events[events.length - 1];
  if (!latest) return null;
  for (const field of ["net_id", "case_number", "power_code", "power_name", "case_name", "applicant_name"]) {
    if (latest[field] != null) doc[field] = latest[field];
  }
  doc.status = latest.status;
  doc.updated_at = latest.at;
  const results = events.filter((e) => e.result).map((e) => e.result);
  doc.result = results.length ? results[results.length - 1] : null;
  return doc;
}

function clearCase() {
  document.getElementById("case").hidden = true;
  for (const id of ["case-number", "case-item", "case-name", "case-applicant", "case-status", "case-result"]) text(id, "");
  document.getElementById("case-history").replaceChildren();
  text("audit-message", "");
}

function showCase(doc) {
  text("case-number", doc.case_number || doc.net_id);
  text("case-item", doc.power_name || doc.power_code);
  text("case-name", doc.case_name);
  text("case-applicant", doc.applicant_name);
  text("case-status", STATUS_LABELS[doc.status] || doc.status);
  text("case-result", doc.result
    ? [RESULT_LABELS[doc.result.code] || "", doc.result.note || "", localTime(doc.result.finished_at)].filter(Boolean).join(" ")
    : "尚无结果");
  const rows = doc.events.map((event) => {
    const row = document.createElement("tr");
    const reasons = (event.reasons || []).map((r) => r.message).join("；");
    for (const value of [localTime(event.at), STATUS_LABELS[event.status] || event.status, event.step, event.opinion || reasons]) {
      row.append(cell(value));
    }
    return row;
  });
  document.getElementById("case-history").replaceChildren(...rows);
  document.getElementById("case").hidden = false;
}

// --- 痕迹核验: every status change shown was recorded in the administration zone's audit log
// (docs/audit.md §11). The store holds, per change, its leaf (number and entry, sealed like
// the change; in the document's "audit" by event id once opened);
// the page fetches the log's newest published checkpoint (audit/checkpoint), checks its
// signature with the log's key (audit/key; Ed25519 in WebCrypto), reads the audit path from
// the published tiles (audit/tile/...) and checks that the entry's leaf hash leads to the
// checkpoint's root (RFC 6962 hashing, RFC 9162 §2.1.3.2). A log of the gm suite (SM3, SM2)
// cannot be checked here: WebCrypto has neither, and the page says so.

const AUDIT_UNAVAILABLE = "unavailable", AUDIT_GM = "gm";

function base64Bytes(value) { return Uint8Array.from(atob(value), (c) => c.charCodeAt(0)); }
function joined(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}
function sameBytes(a, b) { return a.length === b.length && a.every((x, i) => x === b[i]); }
async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }
function leafHash(entry) { return sha256(joined(Uint8Array.of(0), new TextEncoder().encode(entry))); }
function nodeHash(left, right) { return sha256(joined(Uint8Array.of(1), left, right)); }
const half = (n) => Math.floor(n / 2);
const odd = (n) => n % 2 === 1;

// A C2SP signed note holding a tlog checkpoint: origin, size, root, then signature lines.
function parseCheckpoint(note) {
  const blank = note.indexOf("\n\n");
  if (blank < 0) return null;
  const body = note.slice(0, blank + 1);
  const lines = body.split("\n");
  if (lines.length < 4 || !/^(0|[1-9][0-9]{0,15})$/.test(lines[1])) return null;
  const signatures = [];
  for (const line of note.slice(blank + 2).split("\n")) {
    const found = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (found) signatures.push({ name: found[1], raw: base64Bytes(found[2]) });
  }
  return { origin: lines[0], size: Number(lines[1]), root: base64Bytes(lines[2]), body, signatures };
}

// <name>+<key ID, 8 hex digits>+<base64(signature type || public key)>
function parseVerifierKey(line) {
  const first = line.indexOf("+"), second = line.indexOf("+", first + 1);
  if (first < 0 || second < 0) return null;
  const raw = base64Bytes(line.slice(second + 1));
  return { name: line.slice(0, first), id: line.slice(first + 1, second), type: raw[0], key: raw.slice(1) };
}

async function checkSignature(checkpoint, keys) {
  let unsupported = false;
  for (const signature of checkpoint.signatures) {
    const id = Array.from(signature.raw.slice(0, 4), (b) => b.toString(16).padStart(2, "0")).join("");
    const key = keys.find((k) => k && k.name === signature.name && k.id === id);
    if (!key) continue;
    if (key.type !== 0x01) { unsupported = true; continue; }  // gm: SM2 is not in WebCrypto
    try {
      const publicKey = await crypto.subtle.importKey("raw", key.key, { name: "Ed25519" }, false, ["verify"]);
      const good = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, signature.raw.slice(4),
                                              new TextEncoder().encode(checkpoint.body));
      return good ? "verified" : "bad";
    } catch (error) { unsupported = true; }
  }
  return unsupported ? "unsupported" : "unknown";
}

function tilePath(level, index, width) {
  const parts = [];
  let n = index;
  do { parts.unshift(String(n % 1000).padStart(3, "0")); n = Math.floor(n / 1000); } while (n > 0);
  const name = parts.map((p, i) => (i < parts.length - 1 ? "x" + p : p)).join("/");
  return "audit/tile/" + level + "/" + name + (width < 256 ? ".p/" + width : "");
}

class TileTree {
  constructor(size) { this.size = size; this.tiles = new Map(); }

  async tile(level, index, width) {
    const path = tilePath(level, index, width);
    if (!this.tiles.has(path)) {
      this.tiles.set(path, fetch(path, { cache: "no-store" }).then(async (response) => {
        if (!response.ok) throw new Error(path);
        const data = new Uint8Array(await response.arrayBuffer());
        if (data.length !== 32 * width) throw new Error(path);
        return data;
      }));
    }
    return this.tiles.get(path);
  }

  // The hash of the complete subtree of height `height` whose leaves start at n·2^height.
  async subtree(height, n) {
    const level = Math.floor(height / 8), below = height - 8 * level;
    const span = 2 ** below, first = n * span;
    const atLevel = Math.floor(this.size / 256 ** level);
    const index = Math.floor(first / 256), offset = first % 256;
    const data = await this.tile(level, index, Math.min(256, atLevel - index * 256));
    let hashes = [];
    for (let i = 0; i < span; i++) hashes.push(data.slice(32 * (offset + i), 32 * (offset + i + 1)));
    while (hashes.length > 1) {
      const up = [];
      for (let i = 0; i < hashes.length; i += 2) up.push(await nodeHash(hashes[i], hashes[i + 1]));
      hashes = up;
    }
    return hashes[0];
  }

  // MTH of leaves [lo, hi): its complete subtrees, left to right, folded from the right.
  async range(lo, hi) {
    const nodes = [];
    while (lo < hi) {
      let height = 0;
      while (2 ** (height + 1) <= hi - lo) height++;
      nodes.push(await this.subtree(height, lo / 2 ** height));
      lo += 2 ** height;
    }
    let hash = nodes[nodes.length - 1];
    for (let i = nodes.length - 2; i >= 0; i--) hash = await nodeHash(nodes[i], hash);
    return hash;
  }

  // PATH(index, D[size]), lowest level first (RFC 9162 §2.1.3.1).
  async auditPath(index) {
    const ranges = [];
    let lo = 0, hi = this.size;
    while (hi - lo > 1) {
      let k = 1;
      while (k * 2 < hi - lo) k *= 2;
      if (index < lo + k) { ranges.push([lo + k, hi]); hi = lo + k; } else { ranges.push([lo, lo + k]); lo += k; }
    }
    ranges.reverse();
    return Promise.all(ranges.map(([a, b]) => this.range(a, b)));
  }
}

// RFC 9162 §2.1.3.2
async function rootFromPath(index, size, hash, path) {
  let fn = index, sn = size - 1, r = hash;
  for (const p of path) {
    if (sn === 0) return null;
    if (odd(fn) || fn === sn) {
      r = await nodeHash(p, r);
      if (!odd(fn)) while (fn !== 0 && !odd(fn)) { fn = half(fn); sn = half(sn); }
    } else {
      r = await nodeHash(r, p);
    }
    fn = half(fn); sn = half(sn);
  }
  return sn === 0 ? r : null;
}

// The changes [event id, status] a status_publish provenance row records as sent: one row
// per application and bundle (outcome "published", detail.events), or, from hubs before it,
// one per change (outcome the status, detail.event_id); as rules/publication.py
// published_changes.
function publishedChanges(row) {
  const detail = row && row.detail;
  if (!detail || typeof detail !== "object" || Array.isArray(detail)) return [];
  if (row.outcome === "published") {
    const changes = detail.events;
    if (!Array.isArray(changes)) return [];
    const valid = changes.every((c) => Array.isArray(c) && c.length === 2 && Number.isInteger(c[0]) && typeof c[1] === "string");
    return valid ? changes : [];
  }
  return Number.isInteger(detail.event_id) && typeof row.outcome === "string" ? [[detail.event_id, row.outcome]] : [];
}

function parsedEntry(entry) {
  try { return JSON.parse(entry); } catch (error) { return null; }
}

// The changes a published leaf proves (connectors/status_store.py leaf_event_ids).
function leafEventIds(entry, filedUnder) {
  const parsed = parsedEntry(entry);
  const ids = publishedChanges(parsed && parsed.row).map((c) => c[0]);
  return ids.length ? ids : [filedUnder];
}

// The leaf of a shown change must be the log's record of publishing exactly that change.
function leafMatches(entry, doc, event) {
  const parsed = parsedEntry(entry);
  const row = parsed && parsed.row;
  return !!row && parsed.table === "provenance" && row.stage === "status_publish" && row.record_id === doc.net_id
    && publishedChanges(row).some((c) => c[0] === event.event_id && c[1] === event.status);
}

async function publishedLog() {
  const response = await fetch("audit/checkpoint", { cache: "no-store" });
  if (!response.ok) return null;
  const checkpoint = parseCheckpoint(await response.text());
  if (!checkpoint) return null;
  const keysResponse = await fetch("audit/key", { cache: "no-store" });
  const keys = keysResponse.ok ? (await keysResponse.text()).split("\n").filter(Boolean).map(parseVerifierKey) : [];
  if (keys.some((k) => k && k.type !== 0x01)) return { checkpoint, signature: AUDIT_GM };
  return { checkpoint, signature: await checkSignature(checkpoint, keys) };
}

// Per event: "ok", "failed", "pending" (after the published checkpoint), or "none" (no leaf).
async function auditEvents(doc) {
  const log = await publishedLog();
  if (!log) return { state: AUDIT_UNAVAILABLE, events: doc.events.map(() => "none") };
  if (log.signature === AUDIT_GM || log.signature === "unsupported") {
    return { state: AUDIT_GM, log, events: doc.events.map(() => "none") };
  }
  const tree = new TileTree(log.checkpoint.size);
  const events = await Promise.all(doc.events.map(async (event) => {
    const leaf = doc.audit ? doc.audit[String(event.event_id)] : null;
    if (!leaf || typeof leaf.entry !== "string" || !Number.isInteger(leaf.seq)) return "none";
    if (leaf.seq >= log.checkpoint.size) return "pending";
    if (!leafMatches(leaf.entry, doc, event)) return "failed";
    try {
      const path = await tree.auditPath(leaf.seq);
      const root = await rootFromPath(leaf.seq, log.checkpoint.size, await leafHash(leaf.entry), path);
      return root && sameBytes(root, log.checkpoint.root) ? "ok" : "failed";
    } catch (error) { return "failed"; }
  }));
  return { state: log.signature, log, events };
}

const AUDIT_LABELS = { ok: "已核验", failed: "核验失败", pending: "待下次公布", none: "—" };

function describeAudit(result) {
  const counts = { ok: 0, failed: 0, pending: 0, none: 0 };
  for (const state of result.events) counts[state] += 1;
  if (result.state === AUDIT_UNAVAILABLE) return { error: false, text: "痕迹核验：审计日志检查点尚未公布，暂无法核验。" };
  if (result.state === AUDIT_GM) {
    return { error: false, text: "痕迹核验：本系统审计日志使用国密算法（SM3、SM2），浏览器内置的 WebCrypto 不支持，"
      + "无法在本页面核验；检查点已由门户端按管理端公钥核验后公布（见 audit/checkpoint）。" };
  }
  const size = result.log.checkpoint.size;
  const signature = result.state === "verified"
    ? "检查点签名已在浏览器中核验"
    : result.state === "bad" ? "检查点签名核验失败" : "检查点签名未能在浏览器中核验（来自门户端已核验的公布）";
  let text = "痕迹核验（审计日志，树大小 " + size + "，" + signature + "）：" + counts.ok + " 条状态记录已核验";
  if (counts.pending) text += "，" + counts.pending + " 条待下次公布后核验";
  if (counts.failed) text += "，" + counts.failed + " 条核验失败";
  if (counts.none) text += "，" + counts.none + " 条无留痕信息";
  return { error: counts.failed > 0 || result.state === "bad", text: text + "。" };
}

async function showAudit(doc) {
  const message = document.getElementById("audit-message");
  message.className = "message";
  message.textContent = "痕迹核验中……";
  let result;
  try { result = await auditEvents(doc); } catch (error) { result = { state: AUDIT_UNAVAILABLE, events: doc.events.map(() => "none") }; }
  const rows = document.querySelectorAll("#case-history tr");
  result.events.forEach((state, i) => { if (rows[i]) rows[i].append(cell(AUDIT_LABELS[state])); });
  const described = describeAudit(result);
  message.className = described.error ? "message error" : "message";
  message.textContent = described.text;
}

async function onLookup(submitEvent) {
  submitEvent.preventDefault();
  clearCase();
  const message = document.getElementById("lookup-message");
  if (!CAN_LOOK_UP) {
    message.className = "message error";
    message.textContent = INSECURE_MESSAGE;
    return;
  }
  message.className = "message";
  message.textContent = "查询中……";
  const key = document.getElementById("case-key").value;
  const password = document.getElementById("password").value;
  try {
    const config = await fetchJson("config.json");
    STATUS_LABELS = config.labels.status;
    RESULT_LABELS = config.labels.result;
    const keys = await statusKeys(key, password, config.query);
    const found = await fetchJson("lookup/" + keys.name);
    let doc = null;
    if (found) {
      try { doc = await openDocument(found, keys); } catch (error) {
        message.className = "message error";
        message.textContent = "查询到的办件记录无法解密或已被改动，请联系办件机关。";
        return;
      }
    }
    if (!doc) {
      message.className = "message error";
      message.textContent = "未查到办件：请核对办件编号和查询密码。";
      return;
    }
    message.textContent = "查询成功";
    showCase(doc);
    await showAudit(doc);
  } catch (error) {
    message.className = "message error";
    message.textContent = "查询失败，请稍后再试。";
  }
}

function cell(value) { const td = document.createElement("td"); td.textContent = plain(value); return td; }

async function loadDisclosures() {
  const index = await fetchJson("disclosure/index.json");
  const days = index ? Object.keys(index.days).sort().reverse().slice(0, 7) : [];
  if (!days.length) { text("disclosure-message", "暂无公示信息"); return; }
  const rows = [];
  for (const day of days) {
    const pages = await Promise.all(Object.keys(index.days[day].pages || {}).sort()
      .map((page) => fetchJson("disclosure/" + day + "/" + page)));
    const records = pages.flatMap((list) => (list ? list.records : []))
      .sort((a, b) => (a.decided_at < b.decided_at ? -1 : a.decided_at > b.decided_at ? 1 : a.record_id - b.record_id));
    for (const r of records) {
      const row = document.createElement("tr");
      const penalty = r.kind === "penalty" ? (r.penalty_kinds || []).join("、") + (r.fine_amount ? " " + r.fine_amount : "") : "";
      row.append(cell(localTime(day)), cell(r.kind === "penalty" ? "行政处罚" : "行政许可"), cell(r.power_name || r.power_code),
                 cell(r.party_name), cell(r.decision), cell(penalty));
      rows.push(row);
    }
  }
  document.getElementById("disclosure-rows").replaceChildren(...rows);
  document.getElementById("disclosure-table").hidden = false;
  text("disclosure-message", "最近 " + days.length + " 天的公示（共 " + rows.length + " 条）");
}

async function loadCatalogue() {
  const catalogue = await fetchJson("catalogue/index.json");
  const items = catalogue ? (Array.isArray(catalogue) ? catalogue : catalogue.items || []) : [];
  if (!items.length) { text("catalogue-message", "目录暂未发布"); return; }
  const rows = items.map((item) => {
    const row = document.createElement("tr");
    row.append(cell(item.code), cell(item.name), cell(item.category_name || item.category));
    return row;
  });
  document.getElementById("catalogue-rows").replaceChildren(...rows);
  document.getElementById("catalogue-table").hidden = false;
  text("catalogue-message", "共 " + items.length + " 项");
}

document.getElementById("lookup-form").addEventListener("submit", onLookup);
if (!CAN_LOOK_UP) {
  const message = document.getElementById("lookup-message");
  message.className = "message error";
  message.textContent = INSECURE_MESSAGE;
}
loadDisclosures().catch(() => text("disclosure-message", "公示信息暂不可用"));
loadCatalogue().catch(() => text("catalogue-message", "目录暂不可用"));

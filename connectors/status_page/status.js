// Public status page of the Power Exchange Hub: plain JavaScript, no build step.
// The lookup name of a status document is derived in the browser exactly as the
// administration side derives it (rules/query_password.py): PBKDF2-HMAC-SHA256 over the
// query password (hyphens and spaces removed, upper case), salted with the prefix from
// config.json and the case number; an 8-character password of the first scheme uses that
// scheme's prefix and iteration count (config.json "legacy"). Nothing
// is ever inserted as HTML: every value goes in through textContent.
"use strict";

const STATUS_LABELS = {
  rejected: "申请未通过校验", submitted: "已提交", registered: "已登记", not_accepted: "不予受理",
  correction_requested: "需补正材料", accepted: "已受理", in_progress: "办理中", paused: "暂停计时",
  returned: "退回", granted: "准予许可", refused: "不予许可", stopped: "终止办理", decided: "已作出处罚决定",
  revoked: "决定已撤销", decision_changed: "决定已变更", corrected: "信息已依法更正",
};
const RESULT_LABELS = { 1: "不予受理", 2: "准予", 3: "不予许可" };

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

async function lookupName(key, password, query) {
  const encoder = new TextEncoder();
  const plain = password.replace(/[ \t-]/g, "").toUpperCase();
  const scheme = query.legacy && plain.length === query.legacy.password_length ? query.legacy : query;
  const material = await crypto.subtle.importKey(
    "raw", encoder.encode(plain), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", iterations: scheme.iterations,
      salt: encoder.encode(scheme.salt_prefix + key.trim().toUpperCase()) },
    material, query.length_bytes * 8);
  const letters = "abcdefghijklmnop";
  return Array.from(new Uint8Array(bits), (b) => letters[b >> 4] + letters[b & 15]).join("");
}

function clearCase() {
  document.getElementById("case").hidden = true;
  for (const id of ["case-number", "case-item", "case-name", "case-applicant", "case-status", "case-result"]) text(id, "");
  document.getElementById("case-history").replaceChildren();
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
    const name = await lookupName(key, password, config.query);
    const doc = await fetchJson("status/" + name.slice(0, 2) + "/" + name + ".json");
    if (!doc) {
      message.className = "message error";
      message.textContent = "未查到办件：请核对办件编号和查询密码。";
      return;
    }
    message.textContent = "查询成功";
    showCase(doc);
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

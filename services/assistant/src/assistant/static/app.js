// Single-page chat UI. Model output is only ever inserted with textContent (never innerHTML).
"use strict";

const $ = (id) => document.getElementById(id);
const conversation = $("conversation");
const statusLine = $("status");

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function addMessage(role, text) {
  const box = element("div", `msg ${role}`);
  const body = element("div", "text", text);
  box.append(body);
  conversation.append(box);
  conversation.scrollTop = conversation.scrollHeight;
  return { box, body };
}

// What the page knows from GET /api/models: whether the shop agent is on, the trace link.
const page = { agent: false, traceUrl: null };

const GREETING_AGENT =
  "Hi! I am the assistant of The Splunk T-Shirt Company. I can look up our products, sizes " +
  "and stock, your orders, and our shipping, returns and sizing policies. Try one of these:";
const GREETING_CHAT = "Hi! Ask me anything. For example:";
const EXAMPLES_AGENT = [
  "Do you have the Splunk T-shirt in XL, and how long does shipping take?",
  "Where is my order 1042?",
  "What is the status of order 7777?",
  "Is the Dashboard Hoodie in stock in size L?",
  "What is your returns policy?",
];
const EXAMPLES_CHAT = [
  "How should I choose a T-shirt size?",
  "Explain distributed tracing in two sentences.",
];

function showGreeting() {
  // not a .msg: the conversation holds only what was said
  const box = element("div", "greeting");
  box.append(element("div", "text", page.agent ? GREETING_AGENT : GREETING_CHAT));
  const list = element("div", "examples");
  for (const question of page.agent ? EXAMPLES_AGENT : EXAMPLES_CHAT) {
    const button = element("button", "example", question);
    button.type = "button";
    button.addEventListener("click", () => {
      $("message").value = question;
      $("composer").requestSubmit();
    });
    list.append(button);
  }
  box.append(list);
  conversation.append(box);
}

async function loadModels() {
  const response = await fetch("/api/models");
  const data = await response.json();
  page.agent = Boolean(data.agent);
  page.traceUrl = data.trace_url || null;
  showGreeting();
  const select = $("model");
  for (const name of data.models) {
    const option = element("option", "", name);
    option.value = name;
    option.selected = name === data.default;
    select.append(option);
  }
}

function bindRange(inputId, outputId, digits) {
  const input = $(inputId);
  const show = () => { $(outputId).textContent = Number(input.value).toFixed(digits); };
  input.addEventListener("input", show);
  show();
}

// Parse complete SSE events out of a text buffer; returns [events, rest].
function parseEvents(buffer) {
  const events = [];
  let index;
  while ((index = buffer.indexOf("\n\n")) >= 0) {
    const block = buffer.slice(0, index);
    buffer = buffer.slice(index + 2);
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) type = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (data.length) events.push({ type, data: JSON.parse(data.join("\n")) });
  }
  return [events, buffer];
}

function feedbackControls(responseId) {
  const wrap = element("span", "feedback");
  wrap.append(element("span", "", "Rate:"));
  const buttons = [];
  const send = async (score, button) => {
    const response = await fetch("/api/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ response_id: responseId, score }),
    });
    if (response.status === 204) {
      for (const other of buttons) other.setAttribute("aria-pressed", String(other === button));
      statusLine.textContent = "Thanks for the feedback.";
    } else {
      statusLine.textContent = "Feedback was not accepted (the answer may have expired).";
    }
  };
  const choices = [["👎", 1, "Bad answer"], ["👍", 5, "Good answer"]];
  for (const [label, score, title] of choices) {
    const button = element("button", "", label);
    button.type = "button";
    button.title = title;
    button.dataset.score = String(score);
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => send(score, button));
    buttons.push(button);
    wrap.append(button);
  }
  return wrap;
}

// The judge's verdict (docs/evaluations.md), evaluated after the answer when `done` says the
// answer is sampled: poll briefly while it is pending; no badge when the judge never answers.
const JUDGE_POLL_MS = 1000;
const JUDGE_POLL_TRIES = 15;

function judgeBadgeText(result) {
  if (result.status !== "done") return "judge: unavailable";
  const evaluations = result.evaluations || [];
  const failed = evaluations.filter((e) => e.score < 0.5);
  if (!failed.length) return `judge: ${evaluations.length}/${evaluations.length} pass`;
  return `judge: ${failed.map((e) => `${e.name} (${e.label})`).join(", ")} failed`;
}

async function pollJudge(meta, responseId) {
  if (!responseId) return;
  for (let i = 0; i < JUDGE_POLL_TRIES; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, JUDGE_POLL_MS));
    let response;
    try {
      response = await fetch(`/api/evaluations/${encodeURIComponent(responseId)}`);
    } catch (error) {
      return;
    }
    if (!response.ok) return;
    const result = await response.json().catch(() => null);
    if (!result) return;
    if (result.status === "pending") continue;
    const text = judgeBadgeText(result);
    const failed = result.status !== "done" || text.endsWith("failed");
    const badge = element("span", `judge ${failed ? "judge-fail" : "judge-pass"}`, text);
    badge.title = (result.evaluations || [])
      .map((e) => `${e.name}: ${e.score} (${e.label})`)
      .join("\n");
    meta.append(badge);
    return;
  }
}

// One line per tool step under the answer: started at `tool_call`, completed at `tool_result`.
function toolStarted(steps, call) {
  const line = element("li", "tool running", `${call.name} … running`);
  line.dataset.callId = call.id;
  steps.append(line);
}

function toolFinished(steps, result) {
  let line = [...steps.children].find((item) => item.dataset.callId === result.id);
  if (!line) {
    line = element("li", "tool");
    steps.append(line);
  }
  const outcome = result.ok ? result.summary : `error: ${result.error} (${result.summary})`;
  const args = result.arguments === undefined ? "" : ` ${result.arguments}`;
  line.textContent = `${result.name}${args} · ${Math.round(result.duration_ms)} ms · ${outcome}`;
  line.className = `tool ${result.ok ? "tool-ok" : "tool-error"}`;
}

function traceLink(traceId) {
  if (!traceId || /^0+$/.test(traceId)) return null;
  if (!page.traceUrl) return element("span", "trace", `trace ${traceId}`);
  const link = element("a", "trace", `trace ${traceId}`);
  link.href = page.traceUrl.replace("{trace_id}", traceId);
  link.target = "_blank";
  link.rel = "noopener";
  link.title = "Open this answer's trace in Splunk APM";
  return link;
}

function showDone(meta, done, responseId, traceId) {
  const usage = done.usage || {};
  const parts = [
    `TTFT ${done.ttft_ms == null ? "–" : Math.round(done.ttft_ms)} ms`,
    ...(done.steps === undefined
      ? []
      : [
          `answer after ${done.time_to_answer_ms == null ? "–" : Math.round(done.time_to_answer_ms)} ms`,
          `${done.steps} model call${done.steps === 1 ? "" : "s"}, ${done.tool_calls} tool call${done.tool_calls === 1 ? "" : "s"}`,
        ]),
    `total ${Math.round(done.duration_ms)} ms`,
    `tokens ${usage.input_tokens ?? "?"} in / ${usage.output_tokens ?? "?"} out`,
    `finish: ${done.finish_reason}`,
  ];
  meta.append(element("span", "metrics", parts.join(" · ")));
  const trace = traceLink(traceId);
  if (trace) meta.append(trace);
  meta.append(feedbackControls(responseId));
  if (done.evaluation === "sampled") pollJudge(meta, responseId);
}

async function send(event) {
  event.preventDefault();
  const input = $("message");
  const message = input.value.trim();
  if (!message) return;
  input.value = "";
  $("send").disabled = true;
  addMessage("user", message);
  const { box, body } = addMessage("assistant", "");
  const steps = element("ol", "steps");
  box.insertBefore(steps, body);
  const meta = element("div", "meta");
  box.append(meta);
  const payload = { message, model: $("model").value };
  // send sampling parameters only when changed from the API default (1): reasoning models
  // reject them, and telemetry records only what was sent
  const temperature = Number($("temperature").value);
  const topP = Number($("top-p").value);
  if (temperature !== 1) payload.temperature = temperature;
  if (topP !== 1) payload.top_p = topP;
  let responseId = null;
  let traceId = null;
  let ended = false;
  try {
    const response = await fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(payload),
    });
    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      throw new Error((error.error && error.error.message) || `HTTP ${response.status}`);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      let events;
      [events, buffer] = parseEvents(buffer + value);
      for (const item of events) {
        if (item.type === "start") {
          responseId = item.data.response_id;
          traceId = item.data.trace_id;
        } else if (item.type === "delta") body.textContent += item.data.text;
        else if (item.type === "tool_call") toolStarted(steps, item.data);
        else if (item.type === "tool_result") toolFinished(steps, item.data);
        else if (item.type === "done") {
          ended = true;
          showDone(meta, item.data, responseId, traceId);
        }
        else if (item.type === "error") {
          ended = true;
          meta.append(element("span", "error", item.data.message));
        }
        conversation.scrollTop = conversation.scrollHeight;
      }
    }
    if (!ended) meta.append(element("span", "error", "The answer was interrupted."));
  } catch (error) {
    meta.append(element("span", "error", String(error.message || error)));
  } finally {
    $("send").disabled = false;
    input.focus();
  }
}

async function reset() {
  await fetch("/api/reset", { method: "POST" });
  conversation.replaceChildren();
  showGreeting();
  statusLine.textContent = "Started a new conversation.";
}

document.addEventListener("DOMContentLoaded", () => {
  bindRange("temperature", "temperature-value", 1);
  bindRange("top-p", "top-p-value", 2);
  $("composer").addEventListener("submit", send);
  $("reset").addEventListener("click", reset);
  $("message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("composer").requestSubmit(); }
  });
  loadModels().catch((error) => { statusLine.textContent = `Could not load models: ${error}`; });
});

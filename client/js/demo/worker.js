// Worker page: joins a task queue, shows each dispatched task, acknowledges it (or gives it back).
import { bindIndicator, createClient, offerTokenRenewal, showError, el, params } from "./common.js";

const queue = params.get("queue") ?? "couriers";
document.getElementById("queue").textContent = queue;
document.getElementById("title").textContent = `Worker · ${queue}`;
const autoAck = document.getElementById("auto-ack");
autoAck.checked = params.get("autoack") === "1";
const list = document.getElementById("tasks");
const logNode = document.getElementById("log");
const banner = document.getElementById("banner");
let done = 0;

const log = (text) => {
  logNode.textContent = `${new Date().toLocaleTimeString()}  ${text}\n${logNode.textContent}`.slice(0, 4000);
};

const describe = (data) => {
  if (data && typeof data === "object") {
    if (data.title) return String(data.title);
    if (data.orderId) return `Deliver order #${data.orderId}${data.address ? ` to ${data.address}` : ""}`;
  }
  return JSON.stringify(data);
};

const client = createClient();
bindIndicator(client);
offerTokenRenewal(client);
client.on("connected", () => log(`connected as ${client.connectionId}`));
client.on("disconnected", ({ code, reason }) => log(`disconnected: ${code} ${reason}`));

client.on("task", (task) => {
  document.getElementById("no-tasks")?.remove();
  log(`task ${task.deliveryId} (attempt ${task.attempt})`);
  const deadlineAt = Date.now() + task.ackDeadlineMs;
  const deadline = el("div", { class: "deadline" });
  const ackButton = el("button", { text: "Done — acknowledge" });
  const nackButton = el("button", { class: "secondary", text: "Give back" });
  const row = el(
    "div",
    { class: "task", "data-delivery-id": task.deliveryId, "data-state": "open" },
    el("div", {}, el("div", { class: "what", text: describe(task.data) }), deadline),
    el("div", {}, ackButton, " ", nackButton),
  );
  const timer = setInterval(() => {
    const left = Math.max(0, Math.ceil((deadlineAt - Date.now()) / 1000));
    deadline.textContent = task.ackDeadlineMs ? `ack within ${left}s · attempt ${task.attempt}` : `attempt ${task.attempt}`;
  }, 250);
  const finish = async (how) => {
    ackButton.disabled = nackButton.disabled = true;
    try {
      await (how === "ack" ? task.ack() : task.nack());
      clearInterval(timer);
      row.dataset.state = how === "ack" ? "acked" : "returned";
      deadline.textContent = how === "ack" ? "acknowledged ✓" : "given back";
      if (how === "ack") document.getElementById("done-count").textContent = String(++done);
      log(`${how} ${task.deliveryId}`);
    } catch (err) {
      ackButton.disabled = nackButton.disabled = false;
      log(`${how} failed: ${err.message}`);
    }
  };
  ackButton.addEventListener("click", () => finish("ack"));
  nackButton.addEventListener("click", () => finish("nack"));
  list.prepend(row);
  if (autoAck.checked) finish("ack");
});

client
  .connect()
  .then(() => client.join(queue))
  .then(() => log(`joined queue ${queue}`))
  .catch((err) => {
    showError(banner, `Cannot join queue ${queue}: ${err.message}`);
    log(`join failed: ${err.message}`);
  });

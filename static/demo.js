/* The demo page: sample buttons post to /demo/send; the raw callback and the answer are shown
 * next to the widget. Plain script, loaded from a file (the page's CSP allows no inline code). */
(() => {
  "use strict";

  var main = document.querySelector("main.demo");
  var callId = main.getAttribute("data-call-id");
  var raw = document.getElementById("raw");
  var result = document.getElementById("result");
  var buttons = document.querySelectorAll("button[data-sample]");

  function busy(on) {
    buttons.forEach((b) => {
      b.disabled = on;
    });
  }

  function send(sample) {
    busy(true);
    result.textContent = `Posting ${sample} …`;
    result.className = "result";
    fetch("/demo/send", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ call_id: callId, sample: sample }),
    })
      .then((resp) => resp.json().then((data) => [resp, data]))
      .then((pair) => {
        var data = pair[1];
        if (!pair[0].ok) throw new Error(`${data.error}: ${JSON.stringify(data.detail)}`);
        raw.textContent = JSON.stringify(data.request, null, 2);
        result.textContent = `POST /webhooks/airudder → HTTP ${data.status} ${JSON.stringify(data.response)}`;
        result.className = data.status === 200 ? "result ok" : "result bad";
      })
      .catch((err) => {
        result.textContent = `Failed: ${err.message}`;
        result.className = "result bad";
      })
      .finally(() => {
        busy(false);
      });
  }

  buttons.forEach((b) => {
    b.addEventListener("click", () => {
      send(b.getAttribute("data-sample"));
    });
  });
})();

// Studies page: live list, and the create form (paste or upload YAML/JSON).
"use strict";
HPO.refresh("studies-rows", "/ui/studies", "/studies");

document.getElementById("spec-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (file) document.getElementById("spec-text").value = await file.text();
});

document.getElementById("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  HPO.showError("create-errors", "");
  const text = document.getElementById("spec-text").value;
  if (!text.trim()) {
    HPO.showError("create-errors", "spec: paste a study spec or choose a file");
    return;
  }
  try {
    // The server parses YAML (a superset of JSON), then validates every field.
    const spec = await HPO.api("/studies/parse", { method: "POST", json: { text } });
    const study = await HPO.api("/studies", { method: "POST", json: spec });
    window.location.href = "/studies/" + encodeURIComponent(study.name);
  } catch (err) {
    HPO.showError("create-errors", err.message);
  }
});

// The editor's sign-in page: POST /comfy/login with the key as a Bearer token sets the HttpOnly cookie
// the editor's own requests then carry; the key never goes into a URL.
const form = document.getElementById("sign-in");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = document.getElementById("key").value.trim();
  const response = await fetch("/comfy/login", { method: "POST", headers: { Authorization: `Bearer ${key}` } });
  if (response.ok) {
    location.replace("/comfy/");
  } else {
    document.getElementById("error").hidden = false;
  }
});

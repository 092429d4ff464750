// The simulator's custom node pack "gateway_probe": a frontend extension served at
// /extensions/gateway_probe/probe.js, as a real custom node's WEB_DIRECTORY is. Tests look for
// window.gatewayProbe to see that the editor loaded the workers' extensions (through the gateway too).
import { app } from "../../scripts/app.js";

app.registerExtension({
  name: "gateway.probe",
  async setup() {
    window.gatewayProbe = { loaded: true, base: location.pathname };
  },
});

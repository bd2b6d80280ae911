-- Argo CD health check for v1 ConfigMap, installed only for an Environment with
-- commitStatusProgress, as argocd-cm key resource.customizations.health.ConfigMap.
-- Lua 5.1 (gopher-lua): reads the global `obj`; uses the base library only.
--
-- Judges only ilab-gitops progress ConfigMaps (label gitops.instructlab.ai/progress: "true"):
-- always Healthy, so they never hold a sync wave; the message is the step's progress
-- ("epoch 3/7, 41 %"), which the step's commit status shows (notifications/argocd.py).
-- Any other ConfigMap returns nil: Argo CD gives it no health, as without this check.
-- A description longer than MAX is dropped, not cut (no string library): Argo CD keeps
-- health messages in the Application's status.
local MAX = 120
local labels = nil
if obj.metadata ~= nil then
  labels = obj.metadata.labels
end
if labels == nil or labels["gitops.instructlab.ai/progress"] ~= "true" then
  return nil
end
local hs = {status = "Healthy", message = ""}
if obj.data ~= nil then
  local text = obj.data["description"]
  if type(text) == "string" and #text <= MAX then
    hs.message = text
  end
end
return hs

-- Shared by every health check (inserted by ilab_gitops.engines.bootstrap.health_lua, since Argo CD
-- runs each argocd-cm script on its own): `truthy[type]` is the condition of that type whose
-- status is "True"; `message(type, default)` is its message, or the default.
local truthy = {}

if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type ~= nil and condition.status == "True" then
      truthy[condition.type] = condition
    end
  end
end

local function message(ctype, default)
  local condition = truthy[ctype]
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return default
end


-- Argo CD health check for vpc.alicloud.dev/BgpPeer, BgpGroup and BgpNetwork (argocd-cm keys
-- resource.customizations.health.vpc.alicloud.dev_BgpPeer, ..._BgpGroup and ..._BgpNetwork,
-- the same script; deploy/argocd/argocd-cm-patch.yaml is generated from this file by
-- hack/render-manifests.sh).
--
-- The operator writes the kstatus conditions Ready, Reconciling and Stalled, each with
-- observedGeneration, and status.observedGeneration:
--   Healthy      Ready=True and the status is for the current generation
--   Progressing  no status yet, status for an older generation, Reconciling=True, or not
--                Ready for another reason (e.g. the cloud peer is Pending, a peer waits for
--                its BgpGroup, a group's deletion waits for its peers)
--   Degraded     Stalled=True (the spec, a Secret, permissions or quota must change), or
--                UpToDate=False with nothing in progress: the cloud differs from Git and the
--                operator is not changing it (driftPolicy Report, managementPolicy Observe)
--   Suspended    paused with the vpc.alicloud.dev/paused annotation (Ready reason Paused)
--
-- Argo CD runs this with only Lua's base, table and package libraries (no string or math
-- library), in gopher-lua (Lua 5.1); it is also tested under Lua 5.4 (tests/health/run.sh).

local hs = {}

local function condition(status, type_)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status

if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local ready = condition(status, "Ready")
local reconciling = condition(status, "Reconciling")
local stalled = condition(status, "Stalled")

if ready ~= nil and ready.reason == "Paused" then
  hs.status = "Suspended"
  hs.message = text(ready, "Paused")
  return hs
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled, "Stalled")
  return hs
end

if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = text(reconciling, "Reconciling")
  return hs
end

local uptodate = condition(status, "UpToDate")
if uptodate ~= nil and uptodate.status == "False" then
  hs.status = "Degraded"
  hs.message = text(uptodate, "Drifted")
  return hs
end

if ready ~= nil and ready.status == "True" then
  if ready.observedGeneration ~= nil and generation ~= nil and ready.observedGeneration < generation then
    hs.status = "Progressing"
    hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    return hs
  end
  hs.status = "Healthy"
  hs.message = text(ready, "Ready")
  return hs
end

local noun = "BGP peer"
if obj.kind == "BgpGroup" then
  noun = "BGP group"
elseif obj.kind == "BgpNetwork" then
  noun = "BGP network"
end
hs.status = "Progressing"
hs.message = text(ready, "Waiting for the " .. noun .. " to become Ready")
return hs

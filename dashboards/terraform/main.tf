# The "LLM assistant" dashboard group, its dashboard and SLO detectors. Chart and detector
# definitions live in ../dashboards.json and ../signalflow/*.flow, shared with the REST path
# (`make dashboards`), so both create exactly the same objects.

provider "signalfx" {
  auth_token = var.api_token
  api_url    = var.api_url != "" ? var.api_url : "https://api.${var.realm}.observability.splunkcloud.com"
}

locals {
  spec      = jsondecode(file("${path.module}/../dashboards.json"))
  charts    = { for chart in local.spec.charts : chart.key => chart }
  detectors = { for detector in local.spec.detectors : detector.key => detector }
  program_vars = {
    environment           = var.environment
    service               = var.service_name
    ttft_p90_slo_s        = var.ttft_p90_slo_s
    error_rate_slo        = var.error_rate_slo
    quality_pass_rate_slo = var.quality_pass_rate_slo
  }
}

resource "signalfx_dashboard_group" "llm" {
  name        = local.spec.group.name
  description = local.spec.group.description
}

resource "signalfx_time_chart" "chart" {
  for_each = local.charts

  name         = each.value.name
  description  = each.value.description
  program_text = templatefile("${path.module}/../signalflow/${each.value.program}", local.program_vars)
  plot_type    = each.value.plot_type
  time_range   = 3600
}

resource "signalfx_dashboard" "models" {
  name            = local.spec.dashboard.name
  description     = local.spec.dashboard.description
  dashboard_group = signalfx_dashboard_group.llm.id
  time_range      = local.spec.dashboard.time_range

  variable {
    property       = local.spec.dashboard.environment_property
    alias          = "environment"
    values         = [var.environment]
    value_required = false
    apply_if_exist = true
  }

  dynamic "chart" {
    for_each = local.charts
    content {
      chart_id = signalfx_time_chart.chart[chart.key].id
      row      = chart.value.row
      column   = chart.value.column
      width    = chart.value.width
      height   = chart.value.height
    }
  }
}

resource "signalfx_detector" "slo" {
  for_each = local.detectors

  name         = each.value.name
  description  = each.value.description
  program_text = templatefile("${path.module}/../signalflow/${each.value.program}", local.program_vars)

  dynamic "rule" {
    for_each = each.value.rules
    content {
      detect_label = rule.value.detect_label
      severity     = rule.value.severity
      description  = rule.value.description
    }
  }
}

output "dashboard_url" {
  description = "Open this in a browser."
  value       = signalfx_dashboard.models.url
}

output "detector_ids" {
  value = { for key, detector in signalfx_detector.slo : key => detector.id }
}

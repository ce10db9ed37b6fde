variable "realm" {
  description = "Splunk Observability Cloud realm, e.g. us1 or eu0 (the API is https://api.<realm>.observability.splunkcloud.com)."
  type        = string
}

variable "api_token" {
  description = "An API access token (Settings > Access Tokens, with API scope). Prefer TF_VAR_api_token."
  type        = string
  sensitive   = true
}

variable "api_url" {
  description = "Override the API URL (defaults to the realm's)."
  type        = string
  default     = ""
}

variable "environment" {
  description = "deployment.environment the dashboard variable and the APM charts select."
  type        = string
  default     = "llm-lab"
}

variable "service_name" {
  description = "The assistant's service.name (sf_service in APM)."
  type        = string
  default     = "assistant"
}

variable "ttft_p90_slo_s" {
  description = "Detector threshold: TTFT p90 in seconds."
  type        = number
  default     = 1.0
}

variable "error_rate_slo" {
  description = "Detector threshold: error rate as a fraction (0.05 = 5 %)."
  type        = number
  default     = 0.05
}

variable "quality_pass_rate_slo" {
  description = "Detector threshold: an evaluation's pass rate (0..1) below which quality dropped."
  type        = number
  default     = 0.8
}

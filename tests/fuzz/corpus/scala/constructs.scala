new KestrelConfig {
  default.maxItems = Some(Int.MaxValue)
  queues = List(new QueueBuilder() { name = "a"; maxAge = 3.days },)
  loggers = new LoggerConfig { level = Level.DEBUG; handlers = new FileHandlerConfig { filename = "x"; roll = Policy.Daily } }
}

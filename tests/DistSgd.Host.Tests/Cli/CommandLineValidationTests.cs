namespace DistSgd.Host.Tests.Cli;

public class CommandLineValidationTests
{
    [Theory]
    [InlineData("--lr", "-1", "--lr: expected a finite learning rate > 0, found '-1'")]
    [InlineData("--lr", "0", "--lr: expected a finite learning rate > 0")]
    [InlineData("--lr", "NaN", "--lr: expected a finite learning rate > 0")]
    [InlineData("--lr", "abc", "'abc'")]
    [InlineData("--epochs", "0", "--epochs: expected at least 1 epoch, found '0'")]
    [InlineData("--batch-size", "0", "--batch-size: expected a batch size of at least 1")]
    [InlineData("--momentum", "1", "--momentum: expected a momentum in [0, 1)")]
    [InlineData("--weight-decay", "-0.1", "--weight-decay: expected a finite weight decay")]
    [InlineData("--patience", "-2", "--patience: expected a patience ≥ 0")]
    [InlineData("--min-delta", "-1", "--min-delta: expected a finite min-delta")]
    [InlineData("--hidden", "256,0", "--hidden: expected comma-separated layer sizes")]
    [InlineData("--hidden", "256,,128", "--hidden: expected comma-separated layer sizes")]
    [InlineData("--model", "cnn", "--model: expected one of auto, linear, softmax, mlp, found 'cnn'")]
    [InlineData("--activation", "gelu", "--activation: expected one of relu, tanh, sigmoid")]
    [InlineData("--schedule", "exp", "--schedule: expected one of cosine, step, constant")]
    [InlineData("--mode", "gossip", "--mode: expected one of")]
    [InlineData("--dataset", "cifar", "--dataset: expected one of fashion-mnist, blobs, linear")]
    [InlineData("--test-fraction", "1", "--test-fraction: expected a fraction strictly between 0 and 1")]
    [InlineData("--threads", "-1", "--threads: expected a thread count")]
    [InlineData("--workers", "0", "--workers: expected from 1 to 64 workers, found '0'")]
    [InlineData("--threads-per-worker", "0", "--threads-per-worker: expected a thread count from 1")]
    public void A_bad_train_flag_exits_2_naming_the_flag_and_what_it_accepts(string flag, string value, string expected)
    {
        var outcome = CliRunner.Run("train", flag, value);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains(expected, outcome.Error);
        Assert.Contains("--help", outcome.Error);
    }

    [Fact]
    public void An_unknown_flag_exits_2()
    {
        var outcome = CliRunner.Run("train", "--learning-rate", "0.1");
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("--learning-rate", outcome.Error);
    }

    [Fact]
    public void Eval_without_a_model_exits_2()
    {
        var outcome = CliRunner.Run("eval");
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("--model", outcome.Error);
    }

    [Theory]
    [InlineData("train")]
    [InlineData("eval")]
    [InlineData("node")]
    public void Every_command_has_help_listing_its_flags(string command)
    {
        var outcome = CliRunner.Run(command, "--help");
        Assert.Equal(0, outcome.ExitCode);
        Assert.Contains("--data", outcome.Output);
        Assert.Contains(command is "train" or "node" ? "--batch-size" : "--model", outcome.Output);
        if (command == "node")
            Assert.Contains("--seed-nodes", outcome.Output);
    }

    [Fact]
    public void A_missing_data_file_exits_2_naming_it()
    {
        using var temp = new TempFolder();
        string missing = temp["absent.csv"];
        var outcome = CliRunner.Run("train", "--data", missing, "--out", temp["run"]);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains(missing, outcome.Error);
    }

    [Fact]
    public void A_malformed_csv_exits_2_with_its_line_and_column()
    {
        using var temp = new TempFolder();
        string csv = temp["bad.csv"];
        File.WriteAllText(csv, "0,1.5,2\n1,2.5,x3\n");
        var outcome = CliRunner.Run("train", "--data", csv, "--out", temp["run"]);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains(csv, outcome.Error);
        Assert.Contains(":2:3", outcome.Error);
    }

    [Fact]
    public void Linear_regression_on_class_labels_is_refused_with_advice()
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run("train", "--mode", "sequential", "--dataset", "blobs", "--samples", "100", "--model", "linear", "--out", temp["run"]);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("--model linear", outcome.Error);
    }
}
